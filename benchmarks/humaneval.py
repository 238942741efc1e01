"""HumanEval: 164 Python functions to complete, scored by running their unit tests.

openai/openai_humaneval, test split. The program run is the problem's prompt (imports,
signature, docstring), then the completion, then the problem's tests and
``check(<entry_point>)``. The completion is the first fenced code block of the response
(a whole function or just its body both work: a repeated ``def`` replaces the stub), or
the raw response when it has no fence. The reward is 1 only when the program exits 0
within the sandbox's ``verify_timeout`` *and* gets past ``check``: its last line echoes
a random token given on stdin (a completion that calls ``sys.exit(0)`` scores 0, reason
``exited_early``). It runs in the verifier sandbox (the item's own sandbox when
stateful; ``local`` bubblewrap by default) as ``python3 -I -S`` (isolated, no
``site``: the standard library only, all HumanEval needs, ~4 ms less start-up), and
``scoring_details`` says why it failed.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from pytest_nel.benchmark import benchmark, scorer
from pytest_nel.exceptions import SandboxError
from pytest_nel.scoring import ScorerInput, strip_reasoning

PROMPT = (
    "Complete the following Python function. Reply with the complete function "
    "(its imports, signature and body) in one ```python code block.\n\n"
    "```python\n{prompt}```"
)
PROGRAM = "solution.py"
COMMAND = ["python3", "-I", "-S", PROGRAM]
DETAIL_CHARS = 500

_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(response: str) -> str:
    """The first fenced code block of a response (to its end if unclosed), or all."""
    text = strip_reasoning(response)
    match = _FENCE.search(text)
    return match.group(1) if match else text


#: Runs only when ``check`` returned: echoes the token given on stdin, so a program
#: that stops early with status 0 (``sys.exit(0)``, ``os._exit(0)``) does not pass.
PASS_MARKER = "import sys as _nel_sys\nprint(_nel_sys.stdin.readline().strip())\n"


def build_program(row: dict[str, Any], completion: str) -> str:
    """Prompt + completion + the tests + ``check(entry_point)`` + the pass marker."""
    return (
        f"{row['prompt']}{completion}\n\n{row['test']}\n\n"
        f"check({row['entry_point']})\n{PASS_MARKER}"
    )


def _oracle(row: dict[str, Any]) -> str:
    """The canonical solution, fenced as a chat model would answer."""
    return f"```python\n{row['prompt']}{row['canonical_solution']}```"


def _reason(exit_code: int, timed_out: bool, truncated: bool, marked: bool) -> str:
    if timed_out:
        return "timeout"
    if truncated:
        return "output_limit"
    if exit_code == 0:
        return "passed" if marked else "exited_early"
    return f"signal {exit_code - 128}" if exit_code > 128 else "failed"


@benchmark(
    name="humaneval",
    dataset="hf://openai/openai_humaneval?split=test",
    prompt=PROMPT,
    target_field="canonical_solution",
    id_field="task_id",
    oracle=_oracle,
    needs_sandbox=True,
    scorer_version="2",
    description="Python function completion, unit tests run in a sandbox (pass@1).",
)
@scorer
def humaneval(sample: ScorerInput) -> dict[str, Any]:
    """Run the completed program with its tests in the item's sandbox."""
    box = sample.sandbox
    if box is None:
        raise SandboxError("humaneval runs model-written code: it needs a sandbox")
    code = extract_code(sample.response)
    if not code.strip():
        return {"correct": False, "extracted": None, "unparsed": True}
    box.write_file(PROGRAM, build_program(sample.metadata, code))
    token = f"nel-passed-{secrets.token_hex(8)}"
    result = sample.verifier().exec(COMMAND, stdin=token + "\n")
    lines = result.stdout.rstrip("\n").rsplit("\n", 1)
    marked = lines[-1] == token
    stderr = result.stderr.strip()
    return {
        "correct": result.ok and marked,
        "extracted": code,
        "reason": _reason(result.exit_code, result.timed_out, result.truncated, marked),
        "exit_code": result.exit_code,
        "error": stderr.splitlines()[-1][:DETAIL_CHARS] if stderr else None,
        "stderr_tail": stderr[-DETAIL_CHARS:],
        "stdout_bytes": len(result.stdout),
        "duration_s": round(result.duration, 3),
    }
