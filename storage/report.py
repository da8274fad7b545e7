"""The like ratio of every method and model version over time, as a PNG chart.

    python -m storage.report --out stats.png [--database-url URL]

The bot's /chart (admins) sends the same picture. Each line is one (method, version): after each
day with votes, the share of 👍 among all its votes so far, with the 95% Wilson interval as a band,
so a new version's first lucky votes show as the wide band they are. A vote counts on the day it
was first cast, with its current value (a switched vote moves its version's line, not its day).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.chart import Series, draw_chart
from storage.db import create_engine, make_sessionmaker, safe_url, sqlite_file
from storage.errors import StorageError
from storage.models import StoredJoke, Vote
from storage.repository import _dislikes, _guard, _likes


@_guard("read the votes per day", StorageError)
async def like_history(session: AsyncSession) -> list[Series]:
    """Per (method, version) with votes: running totals after each day that had votes."""
    day = func.date(Vote.created_at)
    stmt = (
        select(StoredJoke.method, StoredJoke.model, day, _likes(), _dislikes())
        .join(Vote, Vote.joke_id == StoredJoke.id)
        .group_by(StoredJoke.method, StoredJoke.model, day)
        .order_by(StoredJoke.method, StoredJoke.model, day)
    )
    found: dict[tuple[str, str], Series] = {}
    for method, model, when, likes, dislikes in (await session.execute(stmt)).all():
        key = (method, model)
        if key not in found:
            found[key] = Series(label=f"{method} · {model}", days=[], likes=[], votes=[])
        series = found[key]
        series.days.append(date.fromisoformat(str(when)))
        series.likes.append((series.likes[-1] if series.likes else 0) + int(likes))
        votes = int(likes) + int(dislikes)
        series.votes.append((series.votes[-1] if series.votes else 0) + votes)
    return list(found.values())


async def chart_png(session: AsyncSession) -> bytes | None:
    """The chart as PNG bytes, drawn in a worker thread; None while nothing has votes."""
    series = await like_history(session)
    await session.close()  # nothing more to read: do not hold a connection while drawing
    if not series:
        return None
    return await asyncio.to_thread(draw_chart, series)


async def write_report(database_url: str, out: Path) -> bool:
    """Draw the chart of `database_url` into `out` (atomically); False: no votes, no file.

    The database is only read: a missing file is a StorageError, not a new empty database."""
    path = sqlite_file(database_url)
    if path is not None and not path.is_file():
        raise StorageError(f"No database at {str(path)!r} ({safe_url(database_url)})")
    engine = create_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            png = await chart_png(session)
    finally:
        await engine.dispose()
    if png is None:
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_bytes(png)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m storage.report",
        description="Draw the like ratio per method and model version over time (PNG).",
    )
    parser.add_argument("--out", type=Path, required=True, help="output .png file")
    parser.add_argument(
        "--database-url", help="SQLAlchemy URL (default: DATABASE_URL from the settings)"
    )
    args = parser.parse_args(argv)
    url = args.database_url
    if url is None:
        from settings import get_settings  # the CLI may read settings; the library never does

        url = get_settings().database_url
    try:
        drawn = asyncio.run(write_report(url, args.out))
    except (StorageError, OSError) as exc:
        print(f"report failed: {exc}", file=sys.stderr)
        return 1
    if not drawn:
        print("no votes yet: nothing to draw", file=sys.stderr)
        return 1
    print(f"wrote the chart to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
