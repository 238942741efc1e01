"""The evaluation session: the stateful plugin registered when an evaluation runs.

Roles: a *single* process does everything; under xdist the *controller* prepares the
output folder, starts managed services, checks endpoints and summarises, while each
*worker* generates and scores its static shard of items.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from pytest_nel.collection import BenchmarkCollector, EvalItem
from pytest_nel.config import redacted
from pytest_nel.distribution import make_static_scheduler, shard_of_items, worker_index
from pytest_nel.engine import Engine
from pytest_nel.exceptions import NelUsageError
from pytest_nel.problems import Problem, load_problems
from pytest_nel.results import (
    FINGERPRINT,
    SUMMARY,
    latest_records,
    merge_parts,
    read_records,
    result_files,
    write_json_atomic,
)
from pytest_nel.run import (
    BenchmarkRun,
    NelRun,
    api_endpoint,
    check_resume,
    prepare_output,
)
from pytest_nel.sampler import Sampler
from pytest_nel.services import ManagedLlamaCpp, preflight
from pytest_nel.terminal import Progress

if TYPE_CHECKING:
    from pytest_nel.interceptors.launcher import ManagedProxy

RUN_KEY = pytest.StashKey[NelRun]()
SAMPLER_KEY = pytest.StashKey[Sampler]()
SUMMARIES_KEY = pytest.StashKey[dict[str, dict[str, Any]]]()


_SELECTION_OPTIONS = (
    "keyword",
    "markexpr",
    "deselect",
    "lf",
    "stepwise",
    "failedfirst",
)


def _selects_everything(config: pytest.Config) -> bool:
    """True when no option narrows or reorders the collected items."""
    return not any(getattr(config.option, name, None) for name in _SELECTION_OPTIONS)


class NelSession:
    """Hooks of one evaluation run.

    Registered only when ``--nel-*`` options are given.
    """

    def __init__(
        self,
        config: pytest.Config,
        run: NelRun,
        engine: Engine | None,
        *,
        overwrite: bool,
    ) -> None:
        self.config = config
        self.run = run
        workerinput = getattr(config, "workerinput", None)
        self.worker_id: str | None = workerinput["workerid"] if workerinput else None
        self.worker_count: int = workerinput["workercount"] if workerinput else 1
        self.managed: list[ManagedLlamaCpp | ManagedProxy] = []
        self.launched: dict[str, ManagedProxy] = {}  # proxies not yet known to serve
        self.proxies: dict[str, ManagedProxy] = {}  # every proxy, by service
        self.problems = {}
        self.session_start = time.time()
        self.progress: Progress | None = None
        for bench in run.benchmarks:
            data, problems = load_problems(bench.spec, bench.config, run.mirror_dir)
            bench.dataset_fingerprint = data.fingerprint
            self.problems[bench.name] = problems
        if self.worker_id is None:
            from pytest_nel.gate_items import setup_gate

            setup_gate(config, run)  # a bad gate stops the run before any model call
            prepare_output(run, overwrite=overwrite)
            for bench in run.benchmarks:
                bench.dir.mkdir(parents=True, exist_ok=True)
                merge_parts(bench.dir)
        else:
            assert workerinput is not None
            run.endpoints.update(workerinput["nel_endpoints"])
        if run.resume:
            for bench in run.benchmarks:
                records = read_records(result_files(bench.dir)).records
                bench.done = {
                    k
                    for k, r in latest_records(records).items()
                    if r.get("status") == "scored"
                }
        self.engine = engine
        try:
            for name, service in run.config.services.items():
                if service.type == "api" and service.proxy is None:
                    run.endpoints[name] = service.url
                elif service.type == "api" and self.worker_id is None:
                    self._launch_proxy(name, service)  # its start overlaps the rest
            # The engine process was started first thing in pytest_configure (see
            # plugin.py); when every endpoint is known and nothing narrows the
            # selection, it gets its plan now, before collection (corrected at
            # collection_finish if it differs).
            if engine is not None and all(
                b.is_oracle or b.service_name in run.endpoints for b in run.benchmarks
            ):
                self._start_engine()
                if _selects_everything(config):
                    self._submit(self._planned())
        except BaseException:
            for server in self.managed:  # no session to stop them later
                server.stop()
            raise

    @property
    def is_controller(self) -> bool:
        """True in the xdist controller (it runs no items)."""
        return not self.is_worker and getattr(self.config.option, "dist", "no") != "no"

    @property
    def is_worker(self) -> bool:
        """True inside an xdist worker."""
        return self.worker_id is not None

    # ------------------------------------------------------------------ start
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Start managed services, check endpoints and write fingerprints.

        Not run in workers.
        """
        self.session_start = time.time()
        if not self.is_worker:
            try:
                self._start()
            except NelUsageError as exc:
                raise pytest.UsageError(f"nel: {exc}") from None
        if self._runs_items(session) and SAMPLER_KEY not in self.config.stash:
            self._start_engine()

    def _start(self) -> None:
        run = self.run
        collect_only = self.config.getoption("collectonly")
        for name, service in run.config.services.items():
            if not any(b.service_name == name for b in run.benchmarks):
                continue
            if service.type == "llama_cpp":
                if collect_only:
                    run.endpoints[name] = "http://127.0.0.1:0/v1"
                    continue
                server = ManagedLlamaCpp(name, service, run.output)
                self.managed.append(server)
                run.endpoints[name] = server.start()
            if service.proxy is not None:
                run.endpoints[name] = self._start_proxy(name, service, collect_only)
        for bench in run.benchmarks:
            fingerprint = bench.fingerprint(self._endpoint(bench))
            if run.resume:
                check_resume(bench, fingerprint)
            write_json_atomic(bench.dir / FINGERPRINT, fingerprint)
        self._write_config()
        if not collect_only and not self.config.getoption("nel_no_preflight"):
            self._preflight()

    def _start_proxy(self, name: str, service: Any, collect_only: bool) -> str:
        """Start the interceptor proxy in front of a service; returns its base URL."""
        from pytest_nel.interceptors.launcher import check_chain

        check_chain([i.model_dump() for i in service.proxy.interceptors])
        if collect_only:
            return "http://127.0.0.1:0/v1"
        launched = self.launched.get(name)
        if launched is not None:
            if self.is_controller:  # xdist: nothing to overlap, workers need it soon
                self.launched.pop(name).wait_ready()
            base: str = launched.base_url
            return base
        url: str = self._managed_proxy(name, service).start()
        return url

    def _launch_proxy(self, name: str, service: Any) -> None:
        """Launch an api service's proxy at configure time; awaited after collection.

        Its URL is known at once (requests wait in its socket's backlog), so the engine
        gets its plan before collection and the proxy's ~0.4 s start-up overlaps the
        preflight and collection. Under xdist the controller awaits it at sessionstart.
        """
        if self.config.getoption("collectonly") or not any(
            b.service_name == name for b in self.run.benchmarks
        ):
            return
        proxy = self._managed_proxy(name, service)
        self.launched[name] = proxy
        self.run.endpoints[name] = proxy.launch()

    def _managed_proxy(self, name: str, service: Any) -> ManagedProxy:
        from pytest_nel.interceptors.launcher import ManagedProxy, proxy_spec

        upstream = self.run.endpoints.get(name) or service.url
        spec = proxy_spec(name, service, upstream, self.run.output)
        key = getattr(service, "api_key", None)
        proxy = ManagedProxy(
            spec, key.get_secret_value() if key else None, self.run.output
        )
        self.managed.append(proxy)
        self.proxies[name] = proxy
        return proxy

    def _endpoint(self, bench: Any) -> str | None:
        from pytest_nel.config import endpoint_url

        if bench.is_oracle:
            return None  # no model: no endpoint, no preflight
        return api_endpoint(bench.service) or endpoint_url(
            self.run.endpoints.get(bench.service_name, ""), bench.protocol
        )

    def _preflight(self) -> None:
        checked: set[str] = set()
        for bench in self.run.benchmarks:
            endpoint = self._endpoint(bench)
            if endpoint is None or endpoint in checked:
                continue
            checked.add(endpoint)
            key = getattr(bench.service, "api_key", None)
            preflight(
                endpoint,
                model=bench.service.model,
                protocol=bench.protocol,
                api_key=key.get_secret_value() if key else None,
                timeout=min(bench.service.request_timeout, 60.0),
            )

    def _write_config(self) -> None:
        path = self.run.output / "config.yaml"
        path.write_text(
            yaml.safe_dump(redacted(self.run.config), sort_keys=False), encoding="utf-8"
        )

    # ------------------------------------------------------------------ collection
    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        """Add one collector per benchmark to the session's collection."""
        report = yield
        if isinstance(collector, pytest.Session) and report.outcome == "passed":
            report.result = [*report.result, *self._collectors(collector)]
        return report

    def _collectors(self, session: pytest.Session) -> list[BenchmarkCollector]:
        return [
            BenchmarkCollector.from_parent(
                session,
                name=b.name,
                nodeid=b.name,
                bench=b,
                problems=self.problems[b.name],
            )
            for b in self.run.benchmarks
        ]

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """With --resume, leave out samples that are already scored."""
        if not self.run.resume:
            return
        keep, done = [], []
        for item in items:
            if (
                isinstance(item, EvalItem)
                and (item.problem.idx, item.repeat) in item.bench.done
            ):
                done.append(item)
            else:
                keep.append(item)
        if done:
            config.hook.pytest_deselected(items=done)
            items[:] = keep

    # ------------------------------------------------------------------ run
    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Send the engine its plan as soon as the items are known.

        Also freezes the objects alive now (items, datasets, modules) out of the garbage
        collector's reach: they live until the end anyway, and pytest's final
        ``gc.collect()`` calls and every full collection during the run skip them.
        """
        gc.freeze()
        self._await_proxies()
        items = self._my_items(session.items)
        self._submit([(i.bench, i.problem, i.repeat) for i in items])

    def _await_proxies(self) -> None:
        """Wait until the proxies launched at configure time serve.

        Raises:
            pytest.UsageError: A proxy did not start (the message ends with its log).
        """
        launched, self.launched = self.launched, {}
        try:
            for proxy in launched.values():
                proxy.wait_ready()
        except NelUsageError as exc:
            raise pytest.UsageError(f"nel: {exc}") from None

    def _submit(self, samples: list[tuple[BenchmarkRun, Problem, int]]) -> None:
        sampler = self.config.stash.get(SAMPLER_KEY, None)
        if sampler is not None:
            planned = (sample for sample in samples if not sample[0].is_oracle)
            sampler.engine.submit([sampler.request(*sample) for sample in planned])

    def _planned(self) -> list[tuple[BenchmarkRun, Problem, int]]:
        """This process's samples in collection order.

        Computed from the problems alone.
        """
        samples = [
            (bench, problem, repeat)
            for bench in self.run.benchmarks
            for problem in self.problems[bench.name]
            for repeat in range(bench.config.repeats)
            if (problem.idx, repeat) not in bench.done
        ]
        if not self.is_worker:
            return samples
        keys = [f"{b.name}::{p.idx}-r{r}" for b, p, r in samples]
        return [samples[i] for i in self._my_shard(keys)]

    def _my_shard(self, nodeids: list[str]) -> list[int]:
        """Positions of this worker's static shard.

        A worker that replaces a crashed one (its index is past the original count)
        has no shard: the items it is sent are generated on demand.
        """
        index = worker_index(self.worker_id or "gw0")
        if index >= self.worker_count:
            return []
        return shard_of_items(nodeids, self.worker_count)[index]

    def _runs_items(self, session: pytest.Session) -> bool:
        del session
        return not self.is_controller and not self.config.getoption("collectonly")

    def _start_engine(self) -> None:
        """Hand the engine process its setup (it was started at configure time)."""
        engine, self.engine = self.engine, None
        if engine is None:
            return
        sampler = Sampler(
            self.run,
            engine,
            worker_id=self.worker_id,
            share=(worker_index(self.worker_id or "gw0"), self.worker_count),
        )
        self.config.stash[SAMPLER_KEY] = sampler

    def _my_items(self, items: list[pytest.Item]) -> list[EvalItem]:
        if not self.is_worker:
            return [i for i in items if isinstance(i, EvalItem)]
        mine = (items[i] for i in self._my_shard([i.nodeid for i in items]))
        return [item for item in mine if isinstance(item, EvalItem)]

    # ------------------------------------------------------------------ finish
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Merge worker parts, write summaries and verdict items (not in workers)."""
        sampler = self.config.stash.get(SAMPLER_KEY, None)
        if sampler is not None:
            sampler.close()
        if self.is_worker or self.config.getoption("collectonly"):
            return
        interrupted = (
            session.shouldstop or session.shouldfail or session.exitstatus in (2, 3)
        )
        summaries: dict[str, dict[str, Any]] = {}
        for bench in self.run.benchmarks:
            merge_parts(bench.dir)
            summaries[bench.name] = self._summarize(bench, complete=not interrupted)
        self.config.stash[SUMMARIES_KEY] = summaries
        from pytest_nel.reports import write_reports
        from pytest_nel.verdicts import emit_error_budget_items

        emit_error_budget_items(session, self.run, summaries)
        from pytest_nel.gate_items import emit_gate_items

        emit_gate_items(session, self.run, interrupted=bool(interrupted))
        from pytest_nel.junit import add_suite_properties, gate_of_run

        gate = gate_of_run(self.config)
        write_reports(
            self.run.output,
            summaries,
            self.run.config.output.report_formats,
            gate=gate,
        )
        add_suite_properties(self.config, summaries, gate)

    def _summarize(self, bench: Any, *, complete: bool) -> dict[str, Any]:
        read = read_records(result_files(bench.dir))
        now = time.time()
        fresh = sum(1 for r in read.records if r.get("time", 0) >= self.session_start)
        wall = now - self.session_start
        fingerprint = (
            json.loads((bench.dir / FINGERPRINT).read_text(encoding="utf-8"))
            if (bench.dir / FINGERPRINT).is_file()
            else bench.fingerprint(None)
        )
        run_info = {
            "complete": complete,
            "bad_lines": read.bad_lines,
            "wall_s": round(wall, 3),
            "samples_this_session": fresh,
            "samples_per_s": round(fresh / wall, 2) if wall > 0 else None,
            "planned_samples": len(self.problems[bench.name]) * bench.config.repeats,
        }
        from pytest_nel.summary import summarize

        summary = summarize(
            read.records,
            benchmark=bench.name,
            binary=bench.spec.binary,
            repeats=bench.config.repeats,
            fingerprint=fingerprint,
            run_info=run_info,
        )
        proxies = [
            m for m in self.proxies.values() if m.spec["service"] == bench.service_name
        ]
        if proxies and (stats := proxies[0].stats()) is not None:
            summary["proxy"] = stats  # per service: shared by its benchmarks
        write_json_atomic(bench.dir / SUMMARY, summary)
        return summary

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Feed the progress line.

        Only in the process that reports: single or controller.
        """
        if (
            self.is_worker
            or report.when != "call"
            and not (report.when == "setup" and report.failed)
        ):
            return
        if self.progress is None:
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is None:
                return
            total = sum(
                len(self.problems[b.name]) * b.config.repeats
                for b in self.run.benchmarks
            )
            self.progress = Progress(
                reporter, total, self.config.getoption("nel_progress_interval")
            )
        self.progress.update(report)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the score table."""
        summaries = self.config.stash.get(SUMMARIES_KEY, None)
        if summaries:
            from pytest_nel.terminal import write_summary_table

            write_summary_table(terminalreporter, summaries, self.run.output)

    def pytest_unconfigure(self) -> None:
        """Reap the engine process and stop managed services.

        The objects frozen at collection stay frozen: unfreezing them here makes
        pytest's final ``gc.collect()`` calls cost ~0.45 s on a 1319-sample run. (A
        process that runs several sessions in-process, as pytester does, keeps their
        cyclic garbage.)
        """
        if self.engine is not None:
            self.engine.stop()
        sampler = self.config.stash.get(SAMPLER_KEY, None)
        if sampler is not None:
            sampler.finish()
        for server in self.managed:
            server.stop()


class XdistHooks:
    """xdist integration, registered only when xdist is present."""

    def __init__(self, run: NelRun) -> None:
        self.run = run

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """Static shards.

        Each worker is sent exactly the items its engine prefetched.
        """
        return make_static_scheduler(config, log)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Tell workers where the (possibly managed) services listen."""
        node.workerinput["nel_endpoints"] = dict(self.run.endpoints)
