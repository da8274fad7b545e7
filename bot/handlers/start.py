"""/start and /help; /start with a deep link (`t.me/bot?start=j12_<sig>`) opens a shared joke.

A link to a joke that is gone, or a payload that names none (a guessed `j12` or a forged
signature included: `bot/shared_jokes.py`), gets a word why and the usual greeting; nothing is
stored then but the usual user row.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot import texts
from bot.handlers.shared import send_shared
from bot.joke_teller import JokeTeller
from bot.keyboards import method_keyboard
from bot.shared_jokes import ShareLinks
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


async def start_shared(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    teller: JokeTeller,
    share_links: ShareLinks,
) -> None:
    assert message.from_user is not None
    joke = await share_links.joke(session, command.args)
    if joke is None:
        gone = share_links.parse(command.args) is not None  # signed by us, so it existed
        await message.answer(texts.SHARED_NOT_FOUND if gone else texts.SHARED_BAD_LINK)
        await start(message, session, teller)
        return
    await storage.touch_user(session, message.from_user.id)
    await send_shared(message, joke, teller, share_links)


async def help_(message: Message, settings: Settings) -> None:
    await message.answer(texts.HELP.format(max_words=settings.max_prompt_words))


def build_router() -> Router:
    router = Router(name="start")
    router.message.register(
        start_shared,
        CommandStart(deep_link=True),
        F.chat.type == ChatType.PRIVATE,  # where Telegram opens a deep link
        F.from_user,
    )
    router.message.register(start, CommandStart(), F.from_user)
    router.message.register(help_, Command("help"))
    return router
