"""Commands for the operators listed in ADMIN_IDS: /export and /reload.

Anyone else who types them gets the ordinary "unknown command" reply (the fallback router), so the
commands are not even revealed. They are not in the public command list either.
"""

from __future__ import annotations

import json

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot import texts
from bot.errors import ErrorReporter
from bot.joke_teller import JokeTeller
from generation.service import GenerationService
from settings import Settings
from storage.export import joke_record

CHUNK_CHARS = 4000  # Telegram allows 4096 characters a message
MAX_CHUNKS = 20  # beyond that, use `python -m storage.export` on the server


def is_admin(message: Message, settings: Settings) -> bool:
    return message.from_user is not None and message.from_user.id in settings.admin_ids


async def export(message: Message, session: AsyncSession) -> None:
    """The rated jokes as JSON lines, in plain-text messages (the data `storage.export` writes)."""
    chunks: list[str] = []
    current: list[str] = []
    size = count = 0
    truncated = False
    async for joke in storage.iter_exported_jokes(session):
        line = json.dumps(joke_record(joke), ensure_ascii=False)[:CHUNK_CHARS]
        count += 1
        if truncated:
            continue
        if current and size + len(line) + 1 > CHUNK_CHARS:
            chunks.append("\n".join(current))
            current, size = [], 0
            if len(chunks) == MAX_CHUNKS:
                truncated = True
                continue
        current.append(line)
        size += len(line) + 1
    if current and not truncated:
        chunks.append("\n".join(current))
    await session.close()
    if not count:
        await message.answer(texts.ADMIN_EXPORT_EMPTY)
        return
    header = texts.ADMIN_EXPORT_HEADER.format(count=count)
    if truncated:
        header += f"\n{texts.ADMIN_EXPORT_TRUNCATED.format(chunks=MAX_CHUNKS)}"
    await message.answer(header)
    for chunk in chunks:
        await message.answer(chunk)


async def reload(
    message: Message, teller: JokeTeller, service: GenerationService, error_reporter: ErrorReporter
) -> None:
    """Nothing is cached that could go stale, so this reports the state instead of reloading."""
    await message.answer(
        texts.ADMIN_RELOAD_REPORT.format(
            methods=", ".join(teller.method_names()) or "—",
            pending=service.pending,
            errors=error_reporter.count,
            selection=service.selection_status,
        )
    )


def build_router() -> Router:
    router = Router(name="admin")
    router.message.filter(F.from_user, is_admin)
    router.message.register(export, Command("export"))
    router.message.register(reload, Command("reload"))
    return router
