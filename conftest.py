"""This repository's own test configuration: a fake model server shared by the tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# The tests never reach the Hugging Face hub (CI sets these too); set before datasets is
# imported, since it reads them at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# pyarrow registers extension types once per process: import datasets only once.
import datasets  # noqa: E402, F401

# The docker SDK too: its exception classes must stay the same objects across runs.
import docker  # noqa: E402, F401

# Imported here so that pytester's in-process runs find them already loaded (it removes
# modules first imported inside a run, and numpy cannot be imported twice per process).
import pytest_nel.session  # noqa: F401
import pytest_nel.stats  # noqa: F401
import pytest_nel.summary  # noqa: F401
from pytest_nel.testing.fake_model import FakeModel

REPO = Path(__file__).parent
DATASETS = Path(os.environ.get("NEL_DATASETS_DIR", REPO.parent / "shared" / "datasets"))
GSM8K_TEST = DATASETS / "openai" / "gsm8k" / "main" / "test.jsonl"


@pytest.fixture(autouse=True)
def _inner_runs_are_not_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pytester run inside an xdist worker is not itself a worker (plugins such as
    pytest-benchmark read PYTEST_XDIST_WORKER and warn, which our filterwarnings makes
    fatal).
    """
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)


@pytest.fixture(scope="session")
def fake_model() -> Iterator[FakeModel]:
    """A fake OpenAI-compatible model on 127.0.0.1, shared per session.

    It runs in its own process.
    """
    answers = str(GSM8K_TEST) if GSM8K_TEST.is_file() else None
    with FakeModel(gsm8k_answers=answers, accuracy=0.7) as model:
        yield model


@pytest.fixture
def fake(fake_model: FakeModel) -> FakeModel:
    """The shared fake model, reset (no recorded requests, no latency) for this test."""
    fake_model.reset()
    return fake_model


@pytest.fixture(scope="session")
def docker_host() -> str:
    """A Docker engine with the sandbox image, for this session and its inner runs.

    The caller's ``DOCKER_HOST`` when it answers, else a dockerd of our own (started
    once, shared by xdist workers); the image is built on first use (~40 s).
    """
    import shutil

    from pytest_nel.testing.docker_engine import ensure_engine, ensure_image

    if shutil.which("dockerd") is None and not os.environ.get("DOCKER_HOST"):
        pytest.skip("no Docker engine: apt-get install -y docker.io debootstrap")
    host = ensure_engine()
    ensure_image(host)
    os.environ["DOCKER_HOST"] = host  # inner pytester runs inherit it
    return host


@pytest.fixture
def datasets_dir() -> Path:
    """The offline mirror of real benchmark data."""
    if not DATASETS.is_dir():
        pytest.skip(f"offline datasets not found at {DATASETS}")
    return DATASETS


BENCH_TEMPLATE = """
from pytest_nel import benchmark, scorer, ScorerInput, exact_match

@benchmark(name="toy", dataset="data.jsonl", prompt={prompt!r}, target_field="answer",
           category_field="kind")
@scorer
def toy(sample: ScorerInput) -> dict:
    return exact_match(sample)
"""


def toy_rows(
    n: int, *, wrong: set[int] = frozenset(), extra: dict[int, str] | None = None
) -> list[dict[str, object]]:
    """Rows whose prompt makes the fake model answer right, wrong, or fail.

    Each row behaves as scripted.
    """
    rows = []
    for i in range(n):
        say = f"SAY: The answer is {'x' if i in wrong else i}"
        if extra and i in extra:
            say = extra[i] + "\n" + say
        rows.append(
            {
                "question": f"question {i}",
                "answer": str(i),
                "say": say,
                "kind": "even" if i % 2 == 0 else "odd",
            }
        )
    return rows


@pytest.fixture
def toy_bench(pytester: pytest.Pytester):
    """Write a BYOB benchmark ``toy`` and its data into the pytester folder."""
    import json

    def make(
        rows: list[dict[str, object]], prompt: str = "Q: {question}\n{say}"
    ) -> Path:
        pytester.path.joinpath("data.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows)
        )
        path = pytester.path / "toy_bench.py"
        path.write_text(BENCH_TEMPLATE.format(prompt=prompt))
        return path

    return make
