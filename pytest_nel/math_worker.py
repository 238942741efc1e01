"""The math-verify worker: a child process that decides whether two answers are equal.

``python -m pytest_nel.math_worker`` prints ``READY`` once math-verify is imported,
then answers one JSON line per JSON line it reads::

    {"gold": "\\\\frac{1}{2}", "answer": "0.5", "timeout": 5.0}
    -> {"equal": true}      or {"equal": false, "timeout": true, "error": "..."}

math-verify bounds its own work with ``signal.alarm``, which is only safe in a main
thread and would fight pytest-timeout over SIGALRM in the pytest process; here it is
this process's main thread. The worker arms its own interval timer for the whole
check, so a slow sympy computation that returns to Python is cut off cheaply; one that
is stuck in C (a huge integer power) is killed by the parent
(:class:`pytest_nel.math_scoring.MathChecker`). The address space is capped so that a
blow-up ends in a MemoryError, not in the machine swapping.
"""

from __future__ import annotations

import json
import logging
import resource
import signal
import sys
from functools import lru_cache
from types import FrameType
from typing import Any

MEMORY_LIMIT = 4 << 30  # bytes of address space for the checker process


class _CheckTimeout(BaseException):
    """The interval timer fired: the check ran past its time limit.

    A BaseException, so that math-verify's and sympy's ``except Exception`` blocks
    cannot swallow it.
    """


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise _CheckTimeout


@lru_cache(maxsize=1024)
def _parse_gold(gold: str) -> Any:
    from math_verify import parse

    return parse(f"${gold}$", parsing_timeout=None)


def _parse_answer(answer: str) -> Any:
    from math_verify import parse

    return parse(f"${answer}$", parsing_timeout=None)


def check(gold: str, answer: str, timeout: float) -> dict[str, Any]:
    """Compare two LaTeX answers with math-verify within ``timeout`` seconds."""
    from math_verify import verify

    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        equal = verify(_parse_gold(gold), _parse_answer(answer), timeout_seconds=None)
    except _CheckTimeout:
        return {"equal": False, "timeout": True, "error": "time limit"}
    except (MemoryError, RecursionError, OverflowError) as exc:
        return {"equal": False, "timeout": True, "error": type(exc).__name__}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return {"equal": bool(equal)}


def _die_with_parent() -> None:
    """On Linux, be killed when the parent dies, so no check outlives its run."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: stdin's EOF still ends the loop
        pass


def _limit_memory() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > MEMORY_LIMIT:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, hard))


def main() -> None:
    """Serve checks on stdin/stdout until stdin closes."""
    _die_with_parent()
    _limit_memory()
    # With our own timer in charge, math-verify's note that its timeouts are off is
    # noise on every call.
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    signal.signal(signal.SIGALRM, _on_alarm)
    check("1", "1", 30.0)  # import and warm up sympy before saying READY
    out = sys.stdout
    out.write("READY\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        reply = check(request["gold"], request["answer"], float(request["timeout"]))
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
