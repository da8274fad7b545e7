"""Shared test fixtures; the tiny real models live in `tests/fixtures_models.py`, the local Bot API
server fixture in `tests/bot_harness.py` (an aiogram Bot on it in `tests/local_api.py`), the
generation service fixture in `tests/generation_fakes.py`, real PostgreSQL and Redis servers
(`database_url` runs a test on SQLite and on PostgreSQL) in `tests/servers.py`."""

from tests.bot_harness import api
from tests.fixtures_models import one_torch_thread, tiny_gpt_dir, tiny_gpt_split, tok_dir
from tests.generation_fakes import make_service
from tests.local_api import bot
from tests.servers import database_url, postgres_server, redis_server

__all__ = [
    "api",
    "bot",
    "database_url",
    "make_service",
    "one_torch_thread",
    "postgres_server",
    "redis_server",
    "tiny_gpt_dir",
    "tiny_gpt_split",
    "tok_dir",
]
