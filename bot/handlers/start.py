"""/start and /help."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot import texts
from bot.joke_teller import JokeTeller
from bot.keyboards import method_keyboard
from settings import Settings


async def start(message: Message, session: AsyncSession, teller: JokeTeller) -> None:
    assert message.from_user is not None
    await storage.touch_user(session, message.from_user.id)
    method = await teller.user_method(session, message.from_user.id)
    display = teller.display_name(method) if method else "—"
    await message.answer(
        texts.START.format(method=display),
        reply_markup=method_keyboard(teller.registry.methods(), method or ""),
    )


async def help_(message: Message, settings: Settings) -> None:
    await message.answer(texts.HELP.format(max_words=settings.max_prompt_words))


def build_router() -> Router:
    router = Router(name="start")
    router.message.register(start, CommandStart(), F.from_user)
    router.message.register(help_, Command("help"))
    return router
