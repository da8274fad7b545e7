"""Errors the storage layer raises, so the bot catches one family instead of driver internals."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError


class StorageError(Exception):
    """Base of every error the storage layer raises on purpose; `str()` is a human message."""


class DatabaseUnavailable(StorageError):
    """The database cannot be opened, created or migrated; the bot prints it and exits non-zero."""


class StorageWriteError(StorageError, SQLAlchemyError):
    """A write failed (locked longer than the busy timeout, disk full, I/O error) and was rolled
    back; nothing was saved. The driver's exception is kept as `__cause__`.

    Also a `SQLAlchemyError`, so callers that catch the library's errors catch this too."""


class JokeNotFound(StorageError, LookupError):
    """The joke id names no stored joke (e.g. a vote button under a message from a wiped DB)."""

    def __init__(self, joke_id: int) -> None:
        super().__init__(f"joke {joke_id} does not exist")
        self.joke_id = joke_id
