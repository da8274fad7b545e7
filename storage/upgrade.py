"""The database's migrations as a command of their own (`python -m storage.upgrade`).

The bot migrates at start, which is right for one process; replicas started together would race
the same migration, so the scaled deployment runs this once before them.
"""

from __future__ import annotations

import sys

from storage.db import safe_url
from storage.migrate import head_revision, upgrade_to_head


def main(argv: list[str] | None = None) -> int:
    """`python -m storage.upgrade`: bring the database to the newest revision, once, before
    replicas start (docker-compose.scale.yml), so that they never race a migration."""
    import argparse
    import logging

    parser = argparse.ArgumentParser(prog="python -m storage.upgrade", description=main.__doc__)
    parser.add_argument(
        "--database-url", help="SQLAlchemy URL (default: DATABASE_URL from the settings)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    url = args.database_url
    if url is None:
        from settings import get_settings  # the CLI may read settings; the library never does

        url = get_settings().database_url
    upgrade_to_head(url)
    print(f"{safe_url(url)}: at {head_revision()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
