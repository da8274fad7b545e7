"""Choosing who writes the jokes: /method, the ⚙️ button and the picker's buttons."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, MaybeInaccessibleMessage, Message
from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot import texts
from bot.callbacks import MethodCb, PickerCb
from bot.joke_teller import JokeTeller
from bot.keyboards import method_keyboard
from bot.replies import answer_query, edit_message


async def _send_picker(
    message: MaybeInaccessibleMessage, session: AsyncSession, teller: JokeTeller, user_id: int
) -> None:
    method = await teller.user_method(session, user_id)
    await message.answer(
        texts.METHOD_PICKER.format(method=teller.display_name(method) if method else "—"),
        reply_markup=method_keyboard(teller.registry.methods(), method or ""),
    )


async def method_command(message: Message, session: AsyncSession, teller: JokeTeller) -> None:
    assert message.from_user is not None
    await _send_picker(message, session, teller, message.from_user.id)


async def open_picker(
    query: CallbackQuery,
    message: MaybeInaccessibleMessage,
    session: AsyncSession,
    teller: JokeTeller,
) -> None:
    await answer_query(query)
    await _send_picker(message, session, teller, query.from_user.id)


async def choose_method(
    query: CallbackQuery,
    callback_data: MethodCb,
    message: MaybeInaccessibleMessage,
    session: AsyncSession,
    teller: JokeTeller,
    bot: Bot,
) -> None:
    if callback_data.name not in teller.method_names():
        await answer_query(query, texts.METHOD_UNKNOWN, alert=True)
        return
    current = await teller.user_method(session, query.from_user.id)
    display = teller.display_name(callback_data.name)
    if current == callback_data.name:
        await answer_query(query, texts.METHOD_ALREADY.format(method=display))
        return
    await storage.set_user_method(session, query.from_user.id, callback_data.name)
    await session.close()
    await answer_query(query, texts.METHOD_SWITCHED.format(method=display))
    # the picker's text names the current method too, so it changes with the ✅
    await edit_message(
        bot,
        message,
        method_keyboard(teller.registry.methods(), callback_data.name),
        text=texts.METHOD_PICKER.format(method=display),
    )


def build_router() -> Router:
    router = Router(name="methods")
    router.message.register(method_command, Command("method"), F.from_user)
    router.callback_query.register(open_picker, PickerCb.filter(), F.message.as_("message"))
    router.callback_query.register(choose_method, MethodCb.filter(), F.message.as_("message"))
    return router
