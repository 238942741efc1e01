"""``nel validate``: check a benchmark's scoring against its own reference answers.

Without a model, every problem is answered by the benchmark's *oracle* (its reference
answer, stated the way a model would: ``The answer is X``, or the reference solution
itself) through ``solver: {type: oracle}``; the benchmark's own extraction and scorer
must then accept every one, so anything below 100% is a bug in the benchmark or its
scorer, listed problem by problem (exit 1). With ``--model-url`` and ``--model-id``,
a few real samples are run (``--max-problems``, default 10) and each expected and
extracted answer is printed, to eyeball the extraction on real output.

Like ``nel eval run``, this only builds pytest arguments (``--nel-bench NAME
--nel-override __all_benchmarks__.solver.type=oracle ...``) and reads the results
folder afterwards. Only argparse is imported at module level, so ``nel --help`` stays
fast.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

USAGE_ERROR = 4
MODEL_SAMPLES = 10  # problems run by default with a real model
SHOWN_FAILURES = 20  # failing oracle samples listed per benchmark
CELL = 40  # characters of an answer shown in a table cell

__all__ = ["add_validate_parser", "run_validate", "validate_pytest_args"]


def add_validate_parser(parser: argparse.ArgumentParser) -> None:
    """Declare ``nel validate``'s options."""
    parser.add_argument(
        "-b",
        "--bench",
        action="append",
        default=[],
        required=True,
        help="benchmark name or ./file.py[:name] (repeatable)",
    )
    parser.add_argument("--max-problems", type=int, help="validate at most N problems")
    parser.add_argument("--model-url", help="run real samples against this endpoint")
    parser.add_argument("--model-id", help="model name for --model-url")
    parser.add_argument("--api-key", help="API key for --model-url")
    parser.add_argument(
        "-o", "--output-dir", help="keep the results here (default: a temporary folder)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --output-dir")
    parser.add_argument(
        "-O", "--override", action="append", default=[], metavar="KEY=VALUE"
    )
    parser.add_argument("-n", "--workers", help="pytest-xdist workers")
    parser.add_argument(
        "--show",
        type=int,
        default=SHOWN_FAILURES,
        help=f"failing oracle samples to list per benchmark (default {SHOWN_FAILURES})",
    )
    parser.epilog = "Arguments after -- go to pytest unchanged."


def _with_model(ns: argparse.Namespace) -> bool:
    return bool(ns.model_url or ns.model_id)


def validate_pytest_args(
    ns: argparse.Namespace, output: Path, extra: list[str] | tuple[str, ...] = ()
) -> list[str]:
    """The pytest arguments of one ``nel validate`` run."""
    args: list[str] = ["-q", "-p", "no:cacheprovider", "--nel-output", str(output)]
    for name in ns.bench:
        args += ["--nel-bench", name]
    max_problems = ns.max_problems
    if _with_model(ns):
        args += [
            "--nel-model-url",
            ns.model_url or "",
            "--nel-model-id",
            ns.model_id or "",
        ]
        if ns.api_key:
            args += ["--nel-api-key", ns.api_key]
        max_problems = max_problems or MODEL_SAMPLES
    else:
        args += ["--nel-override", "__all_benchmarks__.solver.type=oracle"]
    if max_problems:
        args += ["--nel-max-problems", str(max_problems)]
    for spec in ns.override:
        args += ["--nel-override", spec]
    if ns.overwrite:
        args.append("--nel-overwrite")
    if ns.workers:
        args += ["-n", ns.workers]
    return args + list(extra)


def run_validate(ns: argparse.Namespace, extra: list[str]) -> int:
    """Run ``nel validate``; returns the exit code."""
    if _with_model(ns) and not (ns.model_url and ns.model_id):
        print("nel validate: give both --model-url and --model-id", file=sys.stderr)
        return USAGE_ERROR
    import pytest

    output = Path(ns.output_dir or tempfile.mkdtemp(prefix="nel-validate-"))
    try:
        code = int(pytest.main(validate_pytest_args(ns, output, extra)))
        if code in (USAGE_ERROR, 2, 3):  # usage error, interrupted, internal error
            return code
        failed = _print_report(output, oracle=not _with_model(ns), show=ns.show)
        return code or (1 if failed else 0)
    finally:
        if not ns.output_dir:
            shutil.rmtree(output, ignore_errors=True)
            print(f"(the results in {output} were removed; keep them with -o DIR)")


def _print_report(output: Path, *, oracle: bool, show: int) -> bool:
    """Print each benchmark's pass rate (and samples); True if an oracle run missed."""
    from pytest_nel.results import SUMMARY, latest_records, read_records, result_files

    missed = False
    for bench_dir in sorted(p.parent for p in output.glob(f"*/{SUMMARY}")):
        records = [
            r
            for _, r in sorted(
                latest_records(read_records(result_files(bench_dir)).records).items()
            )
        ]
        passed = sum(r.get("reward") == 1.0 for r in records)
        rate = passed / len(records) if records else 0.0
        mode = "oracle" if oracle else "model"
        print(
            f"\nnel validate {bench_dir.name} ({mode}): {passed}/{len(records)} "
            f"= {rate:.2%}" + _counts(records)
        )
        if oracle:
            wrong = [r for r in records if r.get("reward") != 1.0]
            missed = missed or bool(wrong) or not records
            _print_table(wrong[:show])
            if len(wrong) > show:
                print(f"... and {len(wrong) - show} more (see --show)")
        else:
            _print_table(records)
    return missed


def _counts(records: list[dict[str, Any]]) -> str:
    errors = sum(r.get("status") != "scored" for r in records)
    unparsed = sum(bool(r.get("unparsed")) for r in records)
    truncated = sum(bool(r.get("truncated")) for r in records)
    return f"  (errors {errors}, unparsed {unparsed}, truncated {truncated})"


def _print_table(records: list[dict[str, Any]]) -> None:
    if not records:
        return
    header = ("problem", "reward", "expected", "extracted", "how", "response ends")
    rows = [header] + [_row(r) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        )


def _row(record: dict[str, Any]) -> tuple[str, ...]:
    details = record.get("scoring_details") or {}
    how = [str(details.get(key)) for key in ("method", "checker") if details.get(key)]
    for flag in ("unparsed", "truncated"):
        if record.get(flag):
            how.append(flag)
    if details.get("checker_timeout"):
        how.append("checker_timeout")
    if record.get("error"):
        how.append(
            f"[{record['error'].get('category')}] {record['error'].get('message')}"
        )
    reward = record.get("reward")
    return (
        f"{record.get('problem_id')}-r{record.get('repeat', 0)}",
        "-" if reward is None else f"{reward:g}",
        _cell(record.get("expected_answer")),
        _cell(record.get("extracted_answer")),
        _cell(" ".join(how), 80),
        _tail(record.get("model_response")),
    )


def _tail(response: Any) -> str:
    """The end of a response, where its answer usually is."""
    text = " ".join(str(response or "").split())
    return text if len(text) <= CELL else "..." + text[-(CELL - 3) :]


def _cell(value: Any, width: int = CELL) -> str:
    text = " ".join(str(value).split()) if value is not None else "-"
    return text if len(text) <= width else text[: width - 3] + "..."
