"""One router per feature; `build_routers()` makes fresh ones in the order they must be tried.

Routers are built per dispatcher (not module globals) because aiogram attaches a router to one
parent for life, and tests and restarts build more than one dispatcher in a process.
"""

from __future__ import annotations

from aiogram import Router

from bot.handlers import (
    admin,
    chart,
    fallback,
    inline,
    jokes,
    liked,
    methods,
    shared,
    start,
    stats,
    votes,
)


def build_routers() -> list[Router]:
    # fallback goes last: it answers whatever no feature claimed.
    modules = (start, admin, chart, methods, votes, shared, liked, stats, inline, jokes, fallback)
    return [module.build_router() for module in modules]
