"""``nel``: a thin command line over pytest (it builds pytest arguments, nothing more).

``nel eval run`` returns pytest's exit code; usage errors exit 4, as pytest's do. Heavy
modules are imported only by the command that needs them, so ``nel --help`` is fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_nel.cli_decisions import (
    add_compare_parser,
    add_gate_parser,
    run_compare,
    run_gate,
)
from pytest_nel.cli_validate import add_validate_parser, run_validate
from pytest_nel.sandbox_image import add_sandbox_parser, run_sandbox

USAGE_ERROR = 4

_RUN_OPTIONS = (
    # (cli flag, pytest flag, kind)
    ("--model-url", "--nel-model-url", str),
    ("--model-id", "--nel-model-id", str),
    ("--api-key", "--nel-api-key", str),
    ("--protocol", "--nel-protocol", str),
    ("--repeats", "--nel-repeats", int),
    ("--max-problems", "--nel-max-problems", int),
    ("--max-concurrent", "--nel-max-concurrent", int),
    ("--system-prompt", "--nel-system-prompt", str),
    ("--temperature", "--nel-temperature", float),
    ("--max-tokens", "--nel-max-tokens", int),
    ("--seed", "--nel-seed", int),
)


def build_parser() -> argparse.ArgumentParser:
    """The whole ``nel`` command line."""
    parser = argparse.ArgumentParser(
        prog="nel", description="LLM evaluation on pytest."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("eval", help="run and report evaluations")
    ev_sub = ev.add_subparsers(dest="eval_command", required=True)
    _add_run(ev_sub.add_parser("run", help="run an evaluation (pytest underneath)"))
    rep = ev_sub.add_parser("report", help="render a report from a results folder")
    rep.add_argument("dir", type=Path, help="results folder of a run")
    rep.add_argument(
        "-f",
        "--format",
        default="markdown",
        choices=["markdown", "json", "csv", "html", "latex"],
    )
    rep.add_argument(
        "-o", "--output", type=Path, help="write to this file (default: stdout)"
    )
    _add_multi_report(sub.add_parser("report", help="several runs side by side"))
    sub.add_parser("list", help="list the benchmarks")
    add_compare_parser(
        sub.add_parser("compare", help="paired comparison of two runs (CI, flips)")
    )
    add_gate_parser(sub.add_parser("gate", help="policy gate: GO, NO-GO, INCONCLUSIVE"))
    add_validate_parser(
        sub.add_parser(
            "validate", help="check a benchmark's scoring on its reference answers"
        )
    )
    add_sandbox_parser(sub.add_parser("sandbox", help="sandbox images"))
    return parser


def _add_run(run: argparse.ArgumentParser) -> None:
    run.add_argument("config", nargs="?", help="YAML config file")
    run.add_argument(
        "-b",
        "--bench",
        action="append",
        default=[],
        help="benchmark name or ./file.py[:name] (repeatable)",
    )
    for flag, _, kind in _RUN_OPTIONS:
        run.add_argument(flag, type=kind)
    run.add_argument("-o", "--output-dir", help="results folder")
    run.add_argument(
        "--resume", action="store_true", help="continue the run in --output-dir"
    )
    run.add_argument("--overwrite", action="store_true", help="replace earlier results")
    run.add_argument(
        "-O",
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. -O benchmarks.0.repeats=4",
    )
    run.add_argument(
        "-n", "--workers", help="pytest-xdist workers (a number or 'auto')"
    )
    run.add_argument(
        "--no-preflight", action="store_true", help="skip the endpoint check"
    )
    run.add_argument(
        "--baseline", metavar="DIR", help="gate against this run: <bench>::gate items"
    )
    run.add_argument("--gate-policy", metavar="FILE", help="gate policy YAML")
    run.add_argument(
        "--strict", action="store_true", help="gate items short of evidence fail"
    )
    run.epilog = (
        "Arguments after -- go to pytest unchanged, e.g. -- -x --junitxml=out.xml"
    )


def pytest_args(ns: argparse.Namespace, extra: Sequence[str] = ()) -> list[str]:
    """Translate ``nel eval run`` options for pytest.

    The arguments after ``--`` are passed on as well.
    """
    args: list[str] = []
    if ns.config:
        args += ["--nel-config", ns.config]
    for name in ns.bench:
        args += ["--nel-bench", name]
    for flag, pytest_flag, _ in _RUN_OPTIONS:
        value = getattr(ns, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            args += [pytest_flag, str(value)]
    if ns.output_dir:
        args += ["--nel-output", ns.output_dir]
    if ns.resume:
        args.append("--nel-resume")
    if ns.overwrite:
        args.append("--nel-overwrite")
    if ns.no_preflight:
        args.append("--nel-no-preflight")
    if ns.baseline:
        args += ["--nel-baseline", ns.baseline]
    if ns.gate_policy:
        args += ["--nel-gate-policy", ns.gate_policy]
    if ns.strict:
        args.append("--nel-strict")
    for spec in ns.override:
        args += ["--nel-override", spec]
    if ns.workers:
        args += ["-n", ns.workers]
    return args + list(extra)


def _report(ns: argparse.Namespace) -> int:
    from pytest_nel.reports import load_summaries, render

    summaries = load_summaries(ns.dir)
    if not summaries:
        print(f"nel eval report: no */summary.json under {ns.dir}", file=sys.stderr)
        return USAGE_ERROR
    text = render(summaries, ns.format, ns.dir)
    if ns.output:
        ns.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _add_multi_report(rep: argparse.ArgumentParser) -> None:
    rep.add_argument(
        "dirs", nargs="+", type=Path, help="results folders, one column each"
    )
    rep.add_argument(
        "-f",
        "--format",
        default="markdown",
        choices=["markdown", "html", "csv", "json", "latex"],
    )
    rep.add_argument(
        "-o", "--output", type=Path, help="write to this file (default: stdout)"
    )
    rep.add_argument(
        "-l",
        "--label",
        action="append",
        default=[],
        help="column label, once per folder (default: the model, else the folder name)",
    )
    rep.add_argument("--title", default="Evaluation report")
    rep.add_argument(
        "--compare-json", type=Path, help="a `nel compare -o` result to include"
    )
    rep.add_argument("--gate-json", type=Path, help="a `nel gate -o` result to include")


def _multi_report(ns: argparse.Namespace) -> int:
    from pytest_nel.exceptions import NelUsageError
    from pytest_nel.report_data import Report, load_runs, load_section
    from pytest_nel.report_formats import render_report

    try:
        report = Report(
            load_runs(ns.dirs, ns.label),
            title=ns.title,
            compare=load_section(ns.compare_json, "compare"),
            gate=load_section(ns.gate_json, "gate"),
        )
    except NelUsageError as exc:
        print(f"nel report: {exc}", file=sys.stderr)
        return USAGE_ERROR
    text = render_report(report, ns.format)
    if ns.output:
        ns.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _list() -> int:
    from pytest_nel.benchmark import known_names, resolve

    for name in known_names():
        spec = resolve(name)
        print(f"{name:<16} {spec.dataset_label():<48} {spec.description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nel`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    ns = build_parser().parse_args(argv)
    if ns.command == "list":
        return _list()
    if ns.command == "compare":
        return run_compare(ns)
    if ns.command == "gate":
        return run_gate(ns)
    if ns.command == "validate":
        return run_validate(ns, extra)
    if ns.command == "sandbox":
        return run_sandbox(ns)
    if ns.command == "report":
        return _multi_report(ns)
    if ns.eval_command == "report":
        return _report(ns)
    if not ns.config and not ns.bench:
        print("nel eval run: give a config file or --bench NAME", file=sys.stderr)
        return USAGE_ERROR
    import pytest

    return int(pytest.main(pytest_args(ns, extra)))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
