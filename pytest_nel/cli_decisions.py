"""``nel compare`` and ``nel gate``: their options and how they run.

Only argparse is imported at module level, so ``nel --help`` stays fast; the
statistics and readers are imported by the command that runs.

Exit codes (DESIGN.md): ``nel compare`` 0 PASS, 1 BLOCK, 2 WARN or INCONCLUSIVE
under ``--strict`` (else 0); ``nel gate`` 0 GO, 1 NO-GO, 2 INCONCLUSIVE (1 under
``--strict``). Usage errors (unreadable folders, a bad policy, runs that are not
comparable) exit 4 with one message on stderr.

Extension point for other outputs of the gate (e.g. a JUnit file): add the option
in :func:`add_gate_parser` and write it in :func:`_write_gate_outputs`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

USAGE_ERROR = 4

__all__ = ["add_compare_parser", "add_gate_parser", "run_compare", "run_gate"]


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", type=Path, help="results folder of the reference")
    parser.add_argument("candidate", type=Path, help="results folder under test")
    parser.add_argument(
        "--strict", action="store_true", help="inconclusive results fail (exit codes)"
    )
    parser.add_argument(
        "--format",
        default="text",
        choices=["text", "markdown", "json"],
        help="what to print (default text)",
    )
    parser.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="compare runs whose task fingerprints differ (shown as warnings)",
    )
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="use truncated or interrupted results and benchmarks on one side only",
    )
    parser.add_argument(
        "--confidence", type=float, default=0.95, help="interval level (default 0.95)"
    )


def add_compare_parser(parser: argparse.ArgumentParser) -> None:
    """Declare ``nel compare``'s options."""
    _add_common(parser)
    parser.add_argument(
        "--max-drop",
        type=float,
        default=0.01,
        help="tolerated drop on the metric's scale (default 0.01 = 1 point)",
    )
    parser.add_argument("--metric", help="pass@1 (default), mean_reward or pass@k")
    parser.add_argument(
        "-o", "--output", type=Path, help="also write the full result as JSON here"
    )
    parser.add_argument(
        "--show-flips",
        action="store_true",
        help="list the problems that got worse or better",
    )
    parser.epilog = (
        "exit: 0 PASS, 1 BLOCK, 2 WARN/INCONCLUSIVE with --strict (else 0), 4 usage"
    )


def add_gate_parser(parser: argparse.ArgumentParser) -> None:
    """Declare ``nel gate``'s options."""
    _add_common(parser)
    parser.add_argument(
        "-p",
        "--policy",
        type=Path,
        help="gate policy YAML (NeMo Evaluator schema; default: every benchmark "
        "supporting, max_drop 0.015)",
    )
    parser.add_argument(
        "-o", "--output", type=Path, help="also write the full result as JSON here"
    )
    parser.add_argument(
        "--report", type=Path, help="also write a markdown report here (gate.md)"
    )
    parser.add_argument(
        "--junit", type=Path, help="also write a gate-only JUnit XML file here"
    )
    parser.epilog = "exit: 0 GO, 1 NO-GO, 2 INCONCLUSIVE (1 with --strict), 4 usage"


def _fail(command: str, message: str) -> int:
    print(f"nel {command}: {message}", file=sys.stderr)
    return USAGE_ERROR


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def run_compare(ns: argparse.Namespace) -> int:
    """Run ``nel compare``; returns the exit code."""
    from pytest_nel.compare import compare_runs
    from pytest_nel.exceptions import NelUsageError
    from pytest_nel.verdict_text import render_compare

    if not 0.0 < ns.confidence < 1.0:
        return _fail("compare", f"--confidence must be in (0, 1), got {ns.confidence}")
    try:
        result = compare_runs(
            ns.baseline,
            ns.candidate,
            max_drop=ns.max_drop,
            confidence=ns.confidence,
            metric=ns.metric,
            allow_mismatch=ns.allow_mismatch,
            allow_partial=ns.allow_partial,
        )
    except NelUsageError as exc:
        return _fail("compare", str(exc))
    sys.stdout.write(render_compare(result, ns.format, show_flips=ns.show_flips))
    if ns.output:
        _write(ns.output, render_compare(result, "json"))
    return result.exit_code(ns.strict)


def run_gate(ns: argparse.Namespace) -> int:
    """Run ``nel gate``; returns the exit code."""
    from pytest_nel.exceptions import NelUsageError
    from pytest_nel.gate import default_policy, evaluate_gate, load_policy
    from pytest_nel.verdict_text import render_gate

    if not 0.0 < ns.confidence < 1.0:
        return _fail("gate", f"--confidence must be in (0, 1), got {ns.confidence}")
    try:
        policy = load_policy(ns.policy) if ns.policy else default_policy()
        result = evaluate_gate(
            ns.baseline,
            ns.candidate,
            policy,
            confidence=ns.confidence,
            allow_mismatch=ns.allow_mismatch,
            allow_partial=ns.allow_partial,
        )
    except NelUsageError as exc:
        return _fail("gate", str(exc))
    sys.stdout.write(render_gate(result, ns.format))
    _write_gate_outputs(result, ns)
    return result.exit_code(ns.strict)


def _write_gate_outputs(result: Any, ns: argparse.Namespace) -> None:
    from pytest_nel.verdict_text import render_gate

    if ns.output:
        _write(ns.output, render_gate(result, "json"))
    if ns.report:
        _write(ns.report, render_gate(result, "markdown"))
    if ns.junit:
        from pytest_nel.junit import write_gate_junit

        write_gate_junit(result.to_dict(), ns.junit, strict=ns.strict)
