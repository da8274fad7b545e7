"""Is the database answering? One `SELECT 1`, for health checks (webhook mode's /healthz)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

PING_TIMEOUT_S = 2.0


async def database_problem(engine: AsyncEngine, timeout_s: float = PING_TIMEOUT_S) -> str | None:
    """None when a `SELECT 1` comes back within `timeout_s`; else a short reason.

    The reason names the kind of failure only: a driver's message can quote the database URL,
    and a health check is often readable by more people than the logs.
    """
    try:
        async with asyncio.timeout(timeout_s):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except TimeoutError:
        return f"the database did not answer within {timeout_s:g} s"
    except (SQLAlchemyError, OSError) as exc:
        cause = exc.orig if isinstance(exc, SQLAlchemyError) and hasattr(exc, "orig") else exc
        return f"the database does not answer ({type(cause).__name__})"
    return None
