"""The html report: self-contained markup, CI plots on a shared axis, and a real
screenshot in headless Chromium.

The screenshot test needs Chromium (``apt-get install -y --no-install-recommends
chromium``); it is skipped, saying so, where it is not installed.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from report_runs import write_run

from pytest_nel.compare import compare_runs
from pytest_nel.gate import Policy, evaluate_gate
from pytest_nel.report_data import Report, load_runs
from pytest_nel.report_html import PALETTE, Axis, render_html

CATS = {"algebra": 0.45, "biology": 0.8, "chemistry": 0.6, "history": 0.7}
WINDOW = (1200, 1000)


@pytest.fixture
def report(tmp_path: Path) -> Report:
    """Two runs of two benchmarks with categories, plus compare and gate results."""
    base = write_run(
        tmp_path / "base",
        model="model-a",
        benchmarks={"quiz": CATS, "math": {"all": 0.7}},
        problems=400,
        seed=3,
    )
    worse = {k: v - 0.12 for k, v in CATS.items()}
    cand = write_run(
        tmp_path / "cand",
        model="model-<b>",
        benchmarks={"quiz": worse, "math": {"all": 0.7}},
        problems=400,
        seed=4,
    )
    policy = Policy.model_validate(
        {"version": 1, "benchmarks": {"quiz": {"tier": "critical", "max_drop": 0.02}}}
    )
    return Report(
        load_runs([base, cand]),
        compare=compare_runs(base, cand, max_drop=0.02).to_dict(),
        gate=evaluate_gate(base, cand, policy).to_dict(),
    )


def test_page_is_self_contained_with_a_plot_per_row(report: Report) -> None:
    page = render_html(report)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "model-&lt;b&gt;" in page and "model-<b>" not in page
    body = page.split("<h2>Scores</h2>", 1)[1].split("</table>", 1)[0]
    rows = body.split("<tbody>", 1)[1].count("<tr>")
    assert rows == len(report.overall()) == 2
    plots = re.findall(r"<td class='plot'><svg.*?</svg>", body)
    assert len(plots) == rows
    for plot in plots:  # one interval per run, in the run's colour
        assert plot.count(f"stroke='{PALETTE[0]}'") == 3
        assert plot.count(f"stroke='{PALETTE[1]}'") == 3
    assert page.count("<details>") >= 2 and "quiz: 4 categories" in page
    for verdict in ("BLOCK", "NO-GO", "BREACH"):
        assert f">{verdict}</span>" in page
    assert "stroke-dasharray" in page  # the tolerated drop, in the compare plots


def test_axis_is_shared_round_and_covers_every_interval() -> None:
    axis = Axis.covering([0.61, 0.52], [0.74, 0.69], clamp=(0.0, 1.0))
    assert axis.lo <= 0.52 and axis.hi >= 0.74
    assert axis.ticks() == pytest.approx([0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8])
    assert axis.x(axis.lo) < axis.x(0.6) < axis.x(axis.hi) <= axis.width
    assert axis.x(-5.0) == axis.x(axis.lo)  # clipped, never drawn outside
    full = Axis.covering([0.0], [0.98], clamp=(0.0, 1.0))
    assert (full.lo, full.hi) == (0.0, 1.0)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def decode_png(data: bytes) -> npt.NDArray[np.uint8]:
    """Decode an 8-bit RGB/RGBA PNG (not interlaced) to height x width x channels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    rows = raw.reshape(height, 1 + width * bpp).astype(np.int64)
    out = np.zeros((height, width * bpp), dtype=np.int64)
    prev = np.zeros(width * bpp, dtype=np.int64)
    for y in range(height):
        kind, line = int(rows[y, 0]), rows[y, 1:]
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: a running sum per channel
            cur = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:  # Up
            cur = (line + prev) % 256
        else:  # Average and Paeth depend on the pixel just decoded
            cur = np.array(_unfilter(kind, line.tolist(), prev.tolist(), bpp))
        out[y], prev = cur, cur
    return out.reshape(height, width, bpp).astype(np.uint8)


def _unfilter(kind: int, line: list[int], prev: list[int], bpp: int) -> list[int]:
    cur = [0] * len(line)
    for i, x in enumerate(line):
        a = cur[i - bpp] if i >= bpp else 0
        b = prev[i]
        if kind == 3:
            cur[i] = (x + (a + b) // 2) & 255
            continue
        c = prev[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        cur[i] = (x + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    return cur


def _rgb(colour: str) -> list[int]:
    return [int(colour[i : i + 2], 16) for i in (1, 3, 5)]


def test_screenshot_in_headless_chromium(report: Report, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip(
            "chromium is not installed (apt-get install -y --no-install-recommends "
            "chromium); the html screenshot check needs it"
        )
    page, shot = tmp_path / "report.html", tmp_path / "report.png"
    page.write_text(render_html(report), encoding="utf-8")
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), f"no screenshot; chromium said:\n{done.stderr[-2000:]}"
    assert shot.stat().st_size > 20_000  # a blank page is a few kB
    image = decode_png(shot.read_bytes())[:, :, :3].astype(int)
    assert image.shape[:2] == (WINDOW[1], WINDOW[0])
    ink = image.sum(axis=2) < 600  # clearly darker than the white page
    width = WINDOW[0]
    # The scores table: its text on the left, its plots on the right, all inked.
    for run, colour in enumerate(PALETTE[:2]):
        ys, xs = np.nonzero(np.all(np.abs(image - _rgb(colour)) < 8, axis=2))
        plot = xs > width // 2
        assert plot.sum() > 30, f"run {run}'s intervals are not drawn"
        top, bottom = int(ys[plot].min()), int(ys[plot].max())
        assert ink[top : bottom + 1, : width // 4].sum() > 200, "no table text"
    red = np.all(np.abs(image - _rgb("#cf222e")) < 8, axis=2)
    assert red[: WINDOW[1] // 4].sum() > 300, "the NO-GO/BLOCK badges are not shown"
