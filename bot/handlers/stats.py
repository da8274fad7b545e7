"""/top and /stats: what people liked, and how each method is doing."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot import texts
from bot.handlers.chart import chart_keyboard, is_admin_user
from bot.joke_teller import JokeTeller
from bot.stats_text import experiment_lines, ratio_text, version_lines
from settings import Settings

TOP_SIZE = 10
MESSAGE_LIMIT = 4096


def find_method(teller: JokeTeller, asked: str) -> str | None:
    """A method named by its id or its picker label, any case («gpt-sample», «DiffuSeq»)."""
    wanted = asked.strip().casefold()
    for name in teller.method_names():
        if wanted in (name.casefold(), teller.display_name(name).casefold()):
            return name
    return None


async def top(
    message: Message, command: CommandObject, session: AsyncSession, teller: JokeTeller
) -> None:
    method = None
    if command.args and command.args.strip():
        method = find_method(teller, command.args)
        if method is None:
            examples = ", ".join(f"/top {name}" for name in teller.method_names())
            await message.answer(texts.TOP_UNKNOWN_METHOD.format(examples=examples))
            return
    rated = await storage.top_jokes(session, limit=TOP_SIZE, method=method)
    if not rated:
        await message.answer(texts.TOP_EMPTY)
        return
    header = texts.TOP_HEADER
    if method is not None:
        header = texts.TOP_METHOD_HEADER.format(method=teller.display_name(method))
    parts = [header]
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


async def stats(
    message: Message, session: AsyncSession, teller: JokeTeller, settings: Settings
) -> None:
    """Per method, then per model version; the running experiment's verdict; for admins, the
    button to the chart over time (bot/handlers/chart.py)."""
    rows = await storage.method_stats(session)
    if not rows:
        await message.answer(texts.STATS_EMPTY)
        return
    versions = await storage.version_stats(session)
    lines = [texts.STATS_HEADER]
    for row in rows:
        votes = row.likes + row.dislikes
        lines.append(
            texts.STATS_ITEM.format(
                method=teller.display_name(row.method),
                jokes=row.jokes,
                votes=votes,
                ratio=ratio_text(row.likes, votes),
            )
        )
        lines += version_lines(row.method, versions, teller.arms)
    running = teller.arms.experiment
    if running is not None:
        label = teller.display_name(running.method)
        lines += ["", *await experiment_lines(session, teller.arms, label)]
    markup = chart_keyboard() if is_admin_user(message.from_user, settings) else None
    await message.answer("\n".join(lines), reply_markup=markup)


def build_router() -> Router:
    router = Router(name="stats")
    router.message.register(top, Command("top"))
    router.message.register(stats, Command("stats"))
    return router
