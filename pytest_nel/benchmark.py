"""Benchmarks as typed Python: the BYOB decorators, the spec, and lookup by name or
file.

A benchmark is dataset + prompt + scorer::

    @benchmark(name="my-bench", dataset="hf://my-org/data?split=test",
               prompt="Q: {question}\\nA:", target_field="answer")
    @scorer
    def my_scorer(sample: ScorerInput) -> dict:
        return exact_match(sample)

Built-ins live in ``pytest_nel.benchmarks`` (one module each); third-party packages add
more through the ``pytest_nel.benchmarks`` entry-point group; a config may also name a
file (``./my_bench.py`` or ``./my_bench.py:my-bench``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any, Literal

from pytest_nel.exceptions import ConfigError
from pytest_nel.scoring import ScorerInput

ScorerFn = Callable[[ScorerInput], dict[str, Any]]
PromptSpec = str | Callable[[dict[str, Any]], "str | list[dict[str, Any]]"]

#: Built-in benchmarks by name -> module; imported only when used.
BUILTINS: dict[str, str] = {
    "gsm8k": "pytest_nel.benchmarks.gsm8k",
    "mmlu": "pytest_nel.benchmarks.mmlu",
    "arithmetic": "pytest_nel.benchmarks.arithmetic",
    "drop": "pytest_nel.benchmarks.drop",
    "triviaqa": "pytest_nel.benchmarks.triviaqa",
    "mmlu_pro": "pytest_nel.benchmarks.mmlu_pro",
    "gpqa": "pytest_nel.benchmarks.gpqa",
    "math500": "pytest_nel.benchmarks.math500",
    "mgsm": "pytest_nel.benchmarks.mgsm",
    "humaneval": "pytest_nel.benchmarks.humaneval",
    # One language of MGSM each (the module declares all twelve benchmarks).
    **{
        f"mgsm_{lang}": "pytest_nel.benchmarks.mgsm"
        for lang in ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh")
    },
}
ENTRY_POINT_GROUP = "pytest_nel.benchmarks"


@dataclass(frozen=True)
class BenchmarkSpec:
    """Everything needed to turn dataset rows into scored samples.

    Attributes:
        name: The benchmark's name (first part of every node id).
        dataset: ``hf://`` id or file path (relative to ``base_dir``); or a mapping
            ``{subset: source}``, whose datasets are concatenated in order, each row
            getting its subset's name in a ``subset`` column (e.g. MGSM's languages).
        prompt: A ``str.format`` template over the row's fields, a Jinja2 template
            (detected by ``{%`` or ``{#``), or a callable ``row -> str | messages``.
        scorer: ``ScorerInput -> dict``.
        target_field: Row field holding the ground truth (or use ``target``).
        target: Callable ``row -> target`` when the truth needs computing.
        system_prompt: Default system prompt (the solver config may override it).
        endpoint_type: ``"chat"`` or ``"completions"`` to force one; None follows
            the service.
        binary: Rewards are 0/1 (pass@k metrics) rather than continuous (mean_reward).
        category_field: Row field used for the category breakdown; a tuple of
            fields gives one breakdown per field, labelled ``field=value``.
        id_field: Row field with the dataset's own problem id.
        field_mapping: Renames applied to every row before anything else.
        scorer_version: Bumped whenever scoring changes meaning (part of the
            fingerprint).
        base_dir: Folder that a relative ``dataset`` path is resolved against.
        oracle: Callable ``row -> response`` that states the row's reference answer
            the way a model would; ``nel validate`` scores it and expects 100%.
            Default: ``The answer is <target>``.
        needs_sandbox: The scorer runs model-written code: each item gets a fresh
            sandbox (``ScorerInput.sandbox``), ``type: local`` unless the config
            gives the benchmark a ``sandbox:``.
    """

    name: str
    dataset: str | Mapping[str, str]
    prompt: PromptSpec
    scorer: ScorerFn
    target_field: str | None = None
    target: Callable[[dict[str, Any]], Any] | None = None
    system_prompt: str | None = None
    endpoint_type: Literal["chat", "completions"] | None = None
    binary: bool = True
    category_field: str | tuple[str, ...] | None = None
    id_field: str | None = None
    field_mapping: dict[str, str] = field(default_factory=dict)
    scorer_version: str = "1"
    description: str = ""
    base_dir: Path | None = None
    oracle: Callable[[dict[str, Any]], str] | None = None
    needs_sandbox: bool = False

    def target_of(self, row: dict[str, Any]) -> Any:
        """The ground truth of one row."""
        if self.target is not None:
            return self.target(row)
        if self.target_field is None:
            return None
        return row[self.target_field]

    def oracle_response(self, row: dict[str, Any]) -> str:
        """A response that states the row's reference answer (see ``oracle``)."""
        if self.oracle is not None:
            return self.oracle(row)
        target = self.target_of(row)
        if isinstance(target, list | tuple) and target:
            target = target[0]  # accepted aliases: state the first
        return f"The answer is {target}"

    def dataset_label(self) -> str:
        """The dataset source for display (the first of several subsets, counted)."""
        if isinstance(self.dataset, str):
            return self.dataset
        first = next(iter(self.dataset.values()), "")
        more = len(self.dataset) - 1
        return f"{first} (+{more} more)" if more else first

    def prompt_fingerprint(self) -> str:
        """A hash of the prompt template.

        For a callable prompt: its source, plus the module-level constants and
        functions of its module that it uses, so that editing a template constant
        changes the fingerprint too.
        """
        if isinstance(self.prompt, str):
            text = self.prompt
        else:
            text = _callable_text(self.prompt, set())
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


_CONSTANT_TYPES = (str, int, float, tuple, list, dict, frozenset)


def _global_names(code: CodeType) -> set[str]:
    """The global names a code object (and the code nested in it) refers to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _global_names(const)
    return names


def _callable_text(fn: Callable[..., Any], seen: set[int]) -> str:
    """The source of ``fn`` and of the same-module constants and functions it uses."""
    seen.add(id(fn))
    try:
        parts = [inspect.getsource(fn)]
    except (OSError, TypeError):
        return str(getattr(fn, "__qualname__", repr(fn)))
    code = getattr(fn, "__code__", None)
    scope: dict[str, Any] = getattr(fn, "__globals__", {})
    for name in sorted(_global_names(code) if code is not None else ()):
        value = scope.get(name)
        if isinstance(value, _CONSTANT_TYPES):
            parts.append(f"{name} = {value!r}")
        elif (
            inspect.isfunction(value)
            and value.__module__ == fn.__module__
            and id(value) not in seen
        ):
            parts.append(_callable_text(value, seen))
    return "\n".join(parts)


def scorer(fn: ScorerFn) -> ScorerFn:
    """Mark a function as a scorer.

    It takes one :class:`ScorerInput` and returns a dict.
    """
    params = list(inspect.signature(fn).parameters.values())
    required = [p for p in params if p.default is inspect.Parameter.empty]
    if len(required) != 1:
        raise TypeError(
            f"scorer {fn.__qualname__} must take exactly one argument "
            "(sample: ScorerInput)"
        )
    fn.__nel_scorer__ = True  # type: ignore[attr-defined]
    return fn


def benchmark(
    *,
    name: str,
    dataset: str | Mapping[str, str],
    prompt: PromptSpec,
    target_field: str | None = None,
    **options: Any,
) -> Callable[[ScorerFn], ScorerFn]:
    """Declare a benchmark around a scorer function (see :class:`BenchmarkSpec`)."""

    def decorate(fn: ScorerFn) -> ScorerFn:
        module = sys.modules.get(fn.__module__)
        module_file = getattr(module, "__file__", None)
        base_dir = Path(module_file).parent if module_file else None
        spec = BenchmarkSpec(
            name=name,
            dataset=dataset,
            prompt=prompt,
            scorer=fn,
            target_field=target_field,
            base_dir=options.pop("base_dir", base_dir),
            **options,
        )
        fn.__nel_benchmark__ = spec  # type: ignore[attr-defined]
        return fn

    return decorate


def specs_in(module: ModuleType) -> dict[str, BenchmarkSpec]:
    """Every benchmark declared at the top level of a module, by name."""
    found: dict[str, BenchmarkSpec] = {}
    for value in vars(module).values():
        spec = getattr(value, "__nel_benchmark__", None)
        if isinstance(spec, BenchmarkSpec):
            found[spec.name] = spec
    return found


def known_names() -> list[str]:
    """Names of the built-in and entry-point benchmarks."""
    names = set(BUILTINS)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def resolve(name: str, base_dir: Path | None = None) -> BenchmarkSpec:
    """Find a benchmark by built-in name, entry point, ``file.py`` or ``file.py:name``.

    Raises:
        ConfigError: Unknown name (the known ones are listed) or a file without
            benchmarks.
    """
    path_part, _, wanted = name.partition(":") if ".py" in name else (name, "", "")
    if path_part.endswith(".py"):
        return _from_file(path_part, wanted or None, base_dir)
    if name in BUILTINS:
        return _only(specs_in(importlib.import_module(BUILTINS[name])), name, name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            loaded = ep.load()
            module = (
                loaded
                if isinstance(loaded, ModuleType)
                else sys.modules[loaded.__module__]
            )
            return _only(specs_in(module), name, f"entry point {ep.value}")
    raise ConfigError(
        f"unknown benchmark {name!r}; known: {', '.join(known_names())} "
        "(or a path to a BYOB file: ./my_bench.py[:name])"
    )


def _only(
    found: dict[str, BenchmarkSpec], wanted: str | None, where: str
) -> BenchmarkSpec:
    if wanted is not None and wanted in found:
        return found[wanted]
    if wanted is None and len(found) == 1:
        return next(iter(found.values()))
    if not found:
        raise ConfigError(
            f"{where}: no @benchmark found (decorate a @scorer with @benchmark)"
        )
    problem = "no benchmark named " + repr(wanted) if wanted else "several benchmarks"
    raise ConfigError(
        f"{where}: {problem}; "
        f"choose one of: {', '.join(sorted(found))} (write file.py:name)"
    )


def _from_file(
    path_text: str, wanted: str | None, base_dir: Path | None
) -> BenchmarkSpec:
    path = Path(path_text).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    path = path.resolve()
    if not path.is_file():
        raise ConfigError(f"benchmark file {path_text!r} not found (looked at {path})")
    module_name = "nel_byob_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            raise ConfigError(
                f"benchmark file {path_text!r} failed to import: {exc!r}"
            ) from exc
    return _only(specs_in(module), wanted, f"benchmark file {path_text!r}")
