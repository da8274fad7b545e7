"""Export rated jokes for analysis: `python -m storage.export --out ratings.jsonl`.

One JSON object a line for every joke with at least one vote: id, prompt, text, method, model,
params, likes, dislikes, created_at (ISO 8601, UTC), and for best of N the joke's rank in its
draw, the number of candidates, the judge's score and version (null when unknown). Cyrillic is
written as is.

Inline mode: a pick is a rating too, so a joke picked from an inline answer is written even
without votes, and so are the jokes offered with it: `inline_chosen` is true for the pick, false
for the jokes it was picked over (null for jokes sent in the bot's own chats), and `inline_offer`
(the offer's first joke id) groups each offer's jokes.

The database is only read: a missing file is an error, not a new empty database. The file
appears complete or not at all (written to a temporary name, then renamed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from storage.db import create_engine, make_sessionmaker, safe_url, sqlite_file
from storage.errors import StorageError
from storage.inline import iter_exported_jokes
from storage.stats import RatedJoke


def joke_record(joke: RatedJoke) -> dict[str, Any]:
    return {
        "id": joke.id,
        "prompt": joke.prompt,
        "text": joke.text,
        "method": joke.method,
        "model": joke.model,
        "params": joke.params,
        "likes": joke.likes,
        "dislikes": joke.dislikes,
        "created_at": joke.created_at.isoformat(),
        "candidate_rank": joke.candidate_rank,
        "candidates": joke.candidates,
        "judge_score": joke.judge_score,
        "judge_version": joke.judge_version,
        "inline_chosen": joke.inline_chosen,
        "inline_offer": joke.inline_offer,
    }


async def export_ratings(database_url: str, out: Path) -> int:
    """Write the rated jokes of `database_url` to `out` as JSON lines; returns how many."""
    path = sqlite_file(database_url)
    if path is not None and not path.is_file():
        raise StorageError(f"No database at {str(path)!r} ({safe_url(database_url)})")
    engine = create_engine(database_url)
    tmp = out.with_name(f".{out.name}.tmp")
    count = 0
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        async with make_sessionmaker(engine)() as session:
            with tmp.open("w", encoding="utf-8") as stream:
                async for joke in iter_exported_jokes(session):
                    stream.write(json.dumps(joke_record(joke), ensure_ascii=False) + "\n")
                    count += 1
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        await engine.dispose()
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m storage.export", description="Export rated jokes as JSON lines."
    )
    parser.add_argument("--out", type=Path, required=True, help="output .jsonl file")
    parser.add_argument(
        "--database-url", help="SQLAlchemy URL (default: DATABASE_URL from the settings)"
    )
    args = parser.parse_args(argv)
    url = args.database_url
    if url is None:
        from settings import get_settings  # the CLI may read settings; the library never does

        url = get_settings().database_url
    try:
        count = asyncio.run(export_ratings(url, args.out))
    except (StorageError, OSError) as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    print(f"exported {count} rated jokes to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
