"""/top and /stats: what people liked, and how each method is doing."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot import texts
from bot.joke_teller import JokeTeller

TOP_SIZE = 10
MESSAGE_LIMIT = 4096


async def top(message: Message, session: AsyncSession, teller: JokeTeller) -> None:
    rated = await storage.top_jokes(session, limit=TOP_SIZE)
    if not rated:
        await message.answer(texts.TOP_EMPTY)
        return
    parts = [texts.TOP_HEADER]
    for place, item in enumerate(rated, start=1):
        entry = texts.TOP_ITEM.format(
            place=place,
            text=item.text,
            likes=item.likes,
            dislikes=item.dislikes,
            method=teller.display_name(item.method),
        )
        if sum(len(p) + 2 for p in parts) + len(entry) > MESSAGE_LIMIT:
            break
        parts.append(entry)
    await message.answer("\n\n".join(parts))


async def stats(message: Message, session: AsyncSession, teller: JokeTeller) -> None:
    rows = await storage.method_stats(session)
    if not rows:
        await message.answer(texts.STATS_EMPTY)
        return
    lines = [texts.STATS_HEADER]
    for row in rows:
        votes = row.likes + row.dislikes
        ratio = f"{row.likes / votes:.0%}" if votes else "—"
        lines.append(
            texts.STATS_ITEM.format(
                method=teller.display_name(row.method),
                jokes=row.jokes,
                votes=votes,
                ratio=ratio,
            )
        )
    await message.answer("\n".join(lines))


def build_router() -> Router:
    router = Router(name="stats")
    router.message.register(top, Command("top"))
    router.message.register(stats, Command("stats"))
    return router
