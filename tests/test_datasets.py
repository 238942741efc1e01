"""Dataset loading: the offline mirror, local file formats, hub ids, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_nel.datasets import load_dataset, parse_hub_id
from pytest_nel.exceptions import DatasetError

ROWS = [{"question": "q0", "answer": "1"}, {"question": "q1", "answer": "2"}]


def test_hub_id_parsing() -> None:
    hub = parse_hub_id("hf://openai/gsm8k?config=main&split=train&revision=abc")
    assert (hub.repo, hub.config, hub.split, hub.revision) == (
        "openai/gsm8k",
        "main",
        "train",
        "abc",
    )
    assert parse_hub_id("hf://org/name").mirror_parts == (
        "org/name",
        "default",
        "test.jsonl",
    )
    with pytest.raises(DatasetError, match=r"unknown query key\(s\) \['splt'\]"):
        parse_hub_id("hf://org/name?splt=test")
    with pytest.raises(DatasetError, match="expected hf://<org>/<name>"):
        parse_hub_id("hf://just-a-name")


def test_mirror_resolves_hub_ids_without_the_datasets_library(
    datasets_dir: Path,
) -> None:
    data = load_dataset(
        "hf://openai/gsm8k?config=main&split=test", mirror_dir=datasets_dir
    )
    assert len(data.rows) == 1319 and data.fingerprint.startswith("sha256:")
    assert data.rows[0]["question"].startswith("Janet")
    humaneval = load_dataset("hf://openai/openai_humaneval", mirror_dir=datasets_dir)
    assert len(humaneval.rows) == 164  # no config -> default/, no split -> test


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_local_formats(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS) + "\n")
    elif suffix == ".json":
        path.write_text(json.dumps(ROWS))
    elif suffix == ".csv":
        path.write_text("question,answer\nq0,1\nq1,2\n")
    else:
        pyarrow = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        pq.write_table(pyarrow.Table.from_pylist(ROWS), path)
    data = load_dataset(path.name, base_dir=tmp_path)
    assert data.rows == ROWS


def test_bad_files_name_the_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset("missing.jsonl", base_dir=tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(DatasetError, match="cannot parse .*line 2"):
        load_dataset("bad.jsonl", base_dir=tmp_path)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DatasetError, match="unsupported file type '.txt'"):
        load_dataset("x.txt", base_dir=tmp_path)


def test_absent_hub_dataset_offline_says_how_to_go_offline(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset("hf://nobody/nothing?split=test", mirror_dir=tmp_path)
    message = str(info.value)
    assert "hf://nobody/nothing?split=test" in message and "NEL_DATASETS_DIR" in message
    assert "nobody/nothing/default/test.jsonl" in message
