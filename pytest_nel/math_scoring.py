"""``math_equivalence``: answers compared as mathematics, not as strings.

The answer is read with :func:`pytest_nel.math_extraction.extract_math_answer` (the last
``\\boxed{}`` or answer statement) and compared with the target by three checkers in
turn; the first that says "equal" decides, and the details name it:

1. ``string``: equal after normalising the LaTeX (spaces, ``\\left``/``\\right``,
   ``\\dfrac``, ``\\frac12``, degrees, ``\\text{ cm}`` units, ``$``, ``%``, ``x=``);
2. ``numeric``: both are plain numbers or fractions of integers with the same exact
   value (``\\frac{1}{2}`` = ``0.5`` = ``1/2``);
3. ``math_verify``: Hugging Face's math-verify (sympy underneath) decides, so
   ``\\left(3, \\frac{\\pi}{2}\\right)`` = ``(3,\\pi/2)`` and
   ``x^2+2x+1`` = ``(x+1)^2``.

math-verify runs in a child process (:mod:`pytest_nel.math_worker`) with a per-answer
time limit (``params: {math_timeout_s: 5}``): its ``signal.alarm`` timeouts are not
safe in pytest's process, and a sympy blow-up stuck in C can only be stopped by killing
the process. A check that runs out of time or memory is the model's failure: reward 0,
``checker_timeout: true`` in the details, never a hang and never a scorer error.

The module imports nothing from :mod:`pytest_nel.scoring` at run time, so that
scoring's registry can import it.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import IO, TYPE_CHECKING, Any

from pytest_nel.math_extraction import extract_math_answer

if TYPE_CHECKING:
    from pytest_nel.scoring import ScorerInput

__all__ = [
    "MathChecker",
    "Verdict",
    "check_equivalence",
    "math_equivalence",
    "normalize_math",
]

DEFAULT_TIMEOUT_S = 5.0  # per answer, in the checker process
KILL_GRACE_S = 2.0  # past the time limit, the parent kills the checker process
STARTUP_TIMEOUT_S = 120.0  # importing math-verify and sympy on a loaded machine
MAX_CHECK_CHARS = 2_000  # a longer "answer" is compared as a string only

_NOISE = ("\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\ ", "\\displaystyle")
_UNIT = re.compile(r"(?<=[\d}])\\(?:text|mbox|mathrm)\{\s*[A-Za-z ]+\}(?:\^\{?\d\}?)?$")
_TEXT = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\{([^{}]*)\}")
_DEGREES = re.compile(r"\^\{?\\circ\}?")
_FRAC_DIGITS = re.compile(r"\\frac(\d)(\d)")
_FRAC_DIGIT_DEN = re.compile(r"\\frac(\{[^{}]*\})(\d)")
_SQRT_CHAR = re.compile(r"\\sqrt(\w)")
_BARE_POINT = re.compile(r"(?<!\d)\.(?=\d)")
_LHS = re.compile(r"^[A-Za-z]=(?!=)")
_DECIMAL = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_FRACTION = re.compile(r"([-+]?)(?:\\frac\{(\d+)\}\{(\d+)\}|(\d+)/(\d+))")


# --------------------------------------------------------------------------- checkers


def normalize_math(text: str) -> str:
    """A canonical spelling of a LaTeX answer for the ``string`` checker.

    Args:
        text: A LaTeX answer, e.g. ``"\\dfrac 12 \\text{ cm}"``.

    Returns:
        The normalised form, e.g. ``"\\frac{1}{2}"``.
    """
    for noise in _NOISE:
        text = text.replace(noise, "")
    text = text.replace("\\$", "").replace("$", "").replace("\\%", "").rstrip("%")
    text = re.sub(r"\\[dt]frac", r"\\frac", "".join(text.split()))
    text = _UNIT.sub("", _DEGREES.sub("", text))
    text = _TEXT.sub(r"\1", text)
    text = _FRAC_DIGITS.sub(r"\\frac{\1}{\2}", text)
    text = _FRAC_DIGIT_DEN.sub(r"\\frac\1{\2}", text)
    text = _SQRT_CHAR.sub(r"\\sqrt{\1}", text)
    text = _BARE_POINT.sub("0.", text.rstrip("."))
    return _LHS.sub("", text) if text.count("=") == 1 else text


def _exact_number(normalized: str) -> Fraction | None:
    """The exact value of a normalised plain number or integer fraction, else None."""
    if _DECIMAL.fullmatch(normalized):
        return Fraction(Decimal(normalized.replace(",", "")))
    match = _FRACTION.fullmatch(normalized)
    if match is None:
        return None
    num, den = (match[2], match[3]) if match[2] is not None else (match[4], match[5])
    if int(den) == 0:
        return None
    value = Fraction(int(num), int(den))
    return -value if match[1] == "-" else value


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether two answers are equal, and which checker decided.

    Attributes:
        equal: The answers are mathematically equal.
        checker: ``"string"``, ``"numeric"`` or ``"math_verify"``.
        timed_out: The check ran out of time or memory (then ``equal`` is False).
        error: Why the check was cut short, when it was.
    """

    equal: bool
    checker: str
    timed_out: bool = False
    error: str | None = None


def check_equivalence(
    gold: str,
    answer: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    checker: MathChecker | None = None,
    fast_paths: bool = True,
) -> Verdict:
    """Decide whether ``answer`` equals ``gold`` (string, numeric, then math-verify).

    Args:
        gold: The reference answer (LaTeX).
        answer: The extracted answer (LaTeX).
        timeout: Seconds math-verify may spend on this pair.
        checker: The math-verify process to use (default: this process's own).
        fast_paths: Try the string and numeric checkers first (False sends every
            pair to math-verify; for measurements).

    Returns:
        The verdict.
    """
    if fast_paths:
        norm_gold, norm_answer = normalize_math(gold), normalize_math(answer)
        if norm_gold and norm_gold == norm_answer:
            return Verdict(True, "string")
        gold_value = _exact_number(norm_gold)
        if gold_value is not None and gold_value == _exact_number(norm_answer):
            return Verdict(True, "numeric")
    if len(answer) > MAX_CHECK_CHARS:
        return Verdict(False, "string", error=f"answer over {MAX_CHECK_CHARS} chars")
    reply = (checker or shared_checker()).check(gold, answer, timeout)
    return Verdict(
        bool(reply.get("equal")),
        "math_verify",
        timed_out=bool(reply.get("timeout")),
        error=reply.get("error"),
    )


# --------------------------------------------------------------------------- process


class MathChecker:
    """One math-verify worker process, started on first use, killed when stuck.

    Checks are sent one at a time (a lock serialises callers). A check that does not
    answer within its time limit plus :data:`KILL_GRACE_S` gets the process killed;
    the next check starts a fresh one.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._lock = threading.Lock()

    def check(self, gold: str, answer: str, timeout: float) -> dict[str, Any]:
        """Ask math-verify whether ``answer`` equals ``gold``.

        Returns:
            ``{"equal": bool}``, with ``"timeout": True`` and ``"error"`` when the
            check ran out of time or memory, or the process died on this input.

        Raises:
            RuntimeError: The worker process cannot start (math-verify missing).
        """
        if not timeout > 0:
            raise ValueError(f"math_timeout_s must be a positive number, got {timeout}")
        request = json.dumps({"gold": gold, "answer": answer, "timeout": timeout})
        with self._lock:
            proc = self._running()
            assert proc.stdin is not None
            try:
                proc.stdin.write(request.encode() + b"\n")
                proc.stdin.flush()
            except OSError:
                return self._failed(f"checker process died: {self._log_tail()}")
            line = _read_line(proc, timeout + KILL_GRACE_S)
            if line is None:
                return self._failed(f"killed after {timeout + KILL_GRACE_S:g} s")
            if not line:
                return self._failed(f"checker process died: {self._log_tail()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _failed(self, error: str) -> dict[str, Any]:
        self.close()
        return {"equal": False, "timeout": True, "error": error}

    def _running(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self.close()
        self._log = tempfile.TemporaryFile(prefix="nel-math-")  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_nel.math_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        if _read_line(self._proc, STARTUP_TIMEOUT_S) != b"READY\n":
            tail = self._log_tail()
            self.close()
            raise RuntimeError(
                "the math-verify checker process did not start"
                f"{': ' + tail if tail else ''}. math_equivalence needs math-verify: "
                "pip install math-verify"
            )
        return self._proc

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-800:].strip()

    def close(self) -> None:
        """Stop the worker process (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
            proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes | None:
    """One line from the worker, ``b""`` if it died, None if ``timeout`` passed."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else None


_CHECKERS: dict[int, MathChecker] = {}


def shared_checker() -> MathChecker:
    """This process's checker (a forked child gets its own), closed at exit."""
    pid = os.getpid()
    checker = _CHECKERS.get(pid)
    if checker is None:
        checker = _CHECKERS[pid] = MathChecker()
        atexit.register(checker.close)
    return checker


# --------------------------------------------------------------------------- scorer


def math_equivalence(sample: ScorerInput) -> dict[str, Any]:
    """Score a math answer by mathematical equivalence with the target.

    ``\\frac{1}{2}``, ``0.5`` and ``1/2`` are equal; so are ``(x+1)^2`` and
    ``x^2+2x+1``. No stated answer is unparsed (reward 0). A check that runs out of
    time (``params: {math_timeout_s: N}``, default 5) scores 0 with
    ``checker_timeout: true``.

    Args:
        sample: The sample to score; its target is the reference answer (LaTeX).

    Returns:
        ``correct``, ``extracted``, ``unparsed``, ``method`` (how the answer was
        found), ``checker`` (which checker decided) and ``expected``.

    Raises:
        ValueError: An empty target or a bad ``math_timeout_s``.
    """
    gold = str(sample.target if sample.target is not None else "").strip()
    if not gold:
        raise ValueError("math_equivalence needs a non-empty target answer")
    answer, method = extract_math_answer(sample.response)
    result: dict[str, Any] = {"extracted": answer, "method": method, "expected": gold}
    if answer is None:
        return {**result, "correct": False, "unparsed": True, "checker": None}
    timeout = float(sample.config.get("math_timeout_s", DEFAULT_TIMEOUT_S))
    verdict = check_equivalence(gold, answer, timeout=timeout)
    result.update(correct=verdict.equal, unparsed=False, checker=verdict.checker)
    if verdict.timed_out:
        result.update(checker_timeout=True, checker_error=verdict.error)
    elif verdict.error:
        result["checker_note"] = verdict.error
    return result
