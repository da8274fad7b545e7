"""The like-ratio chart: the numbers behind it, the PNG, and `python -m storage.report`."""

from __future__ import annotations

import asyncio
import os
import struct
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pytest

from storage import report
from storage.chart import DPI, SIZE_INCHES, Series, draw_chart
from tests.ratings_kit import database, rated_joke

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_MAGIC) and data[12:16] == b"IHDR", data[:16]
    return struct.unpack(">II", data[16:24])


def assert_real_chart(data: bytes) -> None:
    assert png_size(data) == (SIZE_INCHES[0] * DPI, SIZE_INCHES[1] * DPI)
    assert len(data) > 15_000  # axes, two lines, bands and a legend; a blank canvas is ~5 KB
    assert data.endswith(b"IEND\xaeB`\x82")  # the file is complete


async def seed(sessions) -> None:
    """Two versions of gpt over three days, and a DiffuSeq joke nobody rated."""
    await rated_joke(sessions, model="gpt@old000", likes=1, dislikes=1, day="2026-03-01")
    await rated_joke(sessions, model="gpt@old000", likes=2, dislikes=0, day="2026-03-03")
    await rated_joke(sessions, model="gpt@new111", arm="B", likes=3, dislikes=1, day="2026-03-02")
    await rated_joke(sessions, model="gpt@new111", arm="B", likes=0, dislikes=2, day="2026-03-03")
    await rated_joke(sessions, method="diffuseq", model="diffuseq@941a6e")


async def test_history_is_cumulative_per_version_and_day(tmp_path: Path) -> None:
    async with database(tmp_path / "jokes.db") as (_, sessions):
        await seed(sessions)
        async with sessions() as session:
            history = await report.like_history(session)
    by_label = {series.label: series for series in history}
    assert sorted(by_label) == ["gpt · gpt@new111", "gpt · gpt@old000"]  # unrated: no line
    old = by_label["gpt · gpt@old000"]
    assert old.days == [date(2026, 3, 1), date(2026, 3, 3)]
    assert (old.likes, old.votes) == ([1, 3], [2, 4])
    new = by_label["gpt · gpt@new111"]
    assert (new.likes, new.votes, new.ratios()) == ([3, 3], [4, 6], [0.75, 0.5])
    low, high = new.bands()
    assert low[1] < 0.5 < high[1] and high[1] - low[1] < high[0] - low[0] + 0.2


def test_the_chart_is_a_png_of_the_expected_size() -> None:
    days = [date(2026, 3, day) for day in range(1, 8)]
    series = [
        Series("gpt · gpt@old000", days, [i for i in range(1, 8)], [2 * i for i in range(1, 8)]),
        Series("gpt · gpt@new111", days[:1], [1], [1]),  # one day: drawn as a bar
    ]
    assert_real_chart(draw_chart(series))


async def test_chart_png_draws_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []

    def spy(series: list[Series]) -> bytes:
        threads.append(threading.current_thread())
        return draw_chart(series)

    monkeypatch.setattr(report, "draw_chart", spy)
    async with database(tmp_path / "jokes.db") as (_, sessions):
        async with sessions() as session:
            assert await report.chart_png(session) is None  # nothing rated: nothing to draw
        await seed(sessions)
        async with sessions() as session:
            png = await report.chart_png(session)
    assert png is not None
    assert_real_chart(png)
    assert threads and threads[0] is not threading.main_thread()


async def test_the_command_line_writes_the_chart(tmp_path: Path) -> None:
    async with database(tmp_path / "jokes.db") as (url, sessions):
        await seed(sessions)
    out = tmp_path / "out" / "stats.png"
    run = subprocess.run(
        [sys.executable, "-m", "storage.report", "--out", str(out), "--database-url", url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert f"wrote the chart to {out}" in run.stderr
    assert_real_chart(out.read_bytes())
    assert [p.name for p in out.parent.iterdir()] == ["stats.png"]  # no temporary file left


def test_the_command_line_says_when_there_is_nothing_to_draw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def empty() -> str:
        async with database(tmp_path / "jokes.db") as (url, _):
            return url

    url = asyncio.run(empty())
    out = tmp_path / "stats.png"
    assert report.main(["--out", str(out), "--database-url", url]) == 1
    assert not out.exists() and "no votes yet" in capsys.readouterr().err
    missing = f"sqlite+aiosqlite:///{tmp_path / 'nope.db'}"
    assert report.main(["--out", str(out), "--database-url", missing]) == 1
    assert not out.exists() and not (tmp_path / "nope.db").exists()  # only read, never created
    assert "No database at" in capsys.readouterr().err
