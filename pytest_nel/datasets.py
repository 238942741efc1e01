"""Dataset loading: ``hf://`` ids, an offline mirror, and local jsonl/json/csv/parquet
files.

``hf://org/name?config=c&split=s&revision=r`` resolves, when a mirror folder is given
(``NEL_DATASETS_DIR``), to ``<dir>/<org>/<name>/<config or default>/<split>.jsonl`` and
is read with the standard library only; otherwise it goes through the ``datasets``
library, imported lazily because it costs about a second to import.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pytest_nel.exceptions import DatasetError

_HF_KEYS = {"config", "split", "revision"}
_OFFLINE_HINT = (
    "To run offline, set NEL_DATASETS_DIR to a folder laid out as "
    "<org>/<name>/<config>/<split>.jsonl (config 'default' when there is none), "
    "or set HF_DATASETS_OFFLINE=1 with the dataset already in the Hugging Face cache."
)


@dataclass(frozen=True, slots=True)
class HubId:
    """A parsed ``hf://org/name?config=c&split=s&revision=r`` id."""

    repo: str
    config: str | None
    split: str
    revision: str | None

    @property
    def mirror_parts(self) -> tuple[str, str, str]:
        """The (repo, config, file) parts of the offline mirror layout."""
        return self.repo, self.config or "default", f"{self.split}.jsonl"


@dataclass(frozen=True, slots=True)
class LoadedDataset:
    """Rows of one split, with where they came from and a content fingerprint."""

    source: str
    rows: list[dict[str, Any]]
    fingerprint: str
    resolved_from: str


def parse_hub_id(source: str) -> HubId:
    """Parse an ``hf://`` dataset id, rejecting unknown query keys."""
    parts = urlsplit(source)
    repo = (parts.netloc + parts.path).strip("/")
    if repo.count("/") != 1:
        raise DatasetError(
            f"dataset {source!r}: expected hf://<org>/<name>[?config=..&split=..]"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - _HF_KEYS
    if unknown:
        raise DatasetError(
            f"dataset {source!r}: unknown query key(s) {sorted(unknown)}; "
            f"allowed: {sorted(_HF_KEYS)}"
        )
    one = {k: v[-1] for k, v in query.items()}
    return HubId(
        repo,
        one.get("config") or None,
        one.get("split") or "test",
        one.get("revision") or None,
    )


def load_dataset(
    source: str, *, base_dir: Path | None = None, mirror_dir: Path | None = None
) -> LoadedDataset:
    """Load every row of a dataset split.

    Args:
        source: ``hf://...`` or a path to a .jsonl/.json/.csv/.parquet file.
        base_dir: Folder that relative paths are resolved against.
        mirror_dir: Offline mirror root (``NEL_DATASETS_DIR``), if any.

    Raises:
        DatasetError: The dataset cannot be found or read; the message names the id.
    """
    if source.startswith("hf://"):
        hub = parse_hub_id(source)
        if mirror_dir is not None:
            path = mirror_dir.joinpath(*hub.mirror_parts)
            if path.is_file():
                return _load_file(source, path)
        return _load_hub(source, hub, mirror_dir)
    path = Path(source).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise DatasetError(f"dataset {source!r}: no such file {str(path)!r}")
    return _load_file(source, path)


SUBSET_FIELD = "subset"


def load_subsets(
    sources: Mapping[str, str],
    *,
    base_dir: Path | None = None,
    mirror_dir: Path | None = None,
) -> LoadedDataset:
    """Load several datasets as one, in order, naming each row's subset.

    Args:
        sources: ``{subset name: source}``, each source as for :func:`load_dataset`.
        base_dir: Folder that relative paths are resolved against.
        mirror_dir: Offline mirror root (``NEL_DATASETS_DIR``), if any.

    Returns:
        The rows of every subset, each with its subset's name in ``subset``; the
        fingerprint covers every subset's.

    Raises:
        DatasetError: A subset cannot be loaded, or its rows already have a
            ``subset`` column.
    """
    rows: list[dict[str, Any]] = []
    prints: list[str] = []
    for name, source in sources.items():
        part = load_dataset(source, base_dir=base_dir, mirror_dir=mirror_dir)
        if part.rows and SUBSET_FIELD in part.rows[0]:
            raise DatasetError(
                f"dataset {source!r} already has a {SUBSET_FIELD!r} column; "
                "it cannot be combined with other subsets"
            )
        rows.extend({**row, SUBSET_FIELD: name} for row in part.rows)
        prints.append(f"{name}={part.fingerprint}")
    digest = hashlib.sha256("\n".join(prints).encode()).hexdigest()
    label = ", ".join(f"{name}: {src}" for name, src in sources.items())
    return LoadedDataset(label, rows, f"sha256:{digest}", "; ".join(prints))


def _load_file(source: str, path: Path) -> LoadedDataset:
    data = path.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            rows = _jsonl_rows(data)
        elif suffix == ".json":
            loaded = json.loads(data)
            rows = loaded if isinstance(loaded, list) else loaded.get("data", loaded)
        elif suffix == ".csv":
            rows = list(csv.DictReader(data.decode("utf-8").splitlines()))
        elif suffix == ".parquet":
            rows = _parquet_rows(path)
        else:
            raise DatasetError(
                f"dataset {source!r}: unsupported file type {suffix!r}; "
                "use .jsonl, .json, .csv or .parquet"
            )
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"dataset {source!r}: cannot parse {str(path)!r}: {exc}"
        ) from exc
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DatasetError(f"dataset {source!r}: expected a list of JSON objects")
    return LoadedDataset(source, rows, digest, str(path))


def _jsonl_rows(data: bytes) -> list[dict[str, Any]]:
    rows = []
    for lineno, line in enumerate(data.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise ValueError(f"line {lineno}: {exc}") from exc
    return rows


def _parquet_rows(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow comes with datasets
        raise DatasetError(
            "reading parquet needs pyarrow: pip install pyarrow"
        ) from exc
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


def _load_hub(source: str, hub: HubId, mirror_dir: Path | None) -> LoadedDataset:
    where = ""
    if mirror_dir is not None:
        where = (
            f" (not in the offline mirror: {mirror_dir.joinpath(*hub.mirror_parts)})"
        )
    try:
        import datasets
    except ImportError as exc:
        raise DatasetError(
            f"dataset {source!r}{where}: the 'datasets' package is not installed. "
            + _OFFLINE_HINT
        ) from exc
    try:
        ds = datasets.load_dataset(
            hub.repo, hub.config, split=hub.split, revision=hub.revision
        )
    except Exception as exc:  # noqa: BLE001 - datasets raises many unrelated types
        first = (
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        )
        raise DatasetError(
            f"dataset {source!r}{where} could not be loaded: {first}. " + _OFFLINE_HINT
        ) from exc
    rows = [dict(r) for r in ds]
    fingerprint = (
        f"hf:{hub.repo}@{hub.revision or 'main'}:{getattr(ds, '_fingerprint', '')}"
    )
    return LoadedDataset(source, rows, fingerprint, f"hub:{hub.repo}")
