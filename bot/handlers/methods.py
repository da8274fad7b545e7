"""Choosing who writes the jokes: /method, the ⚙️ button and the picker's buttons."""

from __future__ import annotations

from contextlib import suppress

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot import texts
from bot.callbacks import MethodCb, PickerCb
from bot.joke_teller import JokeTeller
from bot.keyboards import method_keyboard


async def _send_picker(
    message: Message, session: AsyncSession, teller: JokeTeller, user_id: int
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
    query: CallbackQuery, message: Message, session: AsyncSession, teller: JokeTeller
) -> None:
    await query.answer()
    await _send_picker(message, session, teller, query.from_user.id)


async def choose_method(
    query: CallbackQuery,
    callback_data: MethodCb,
    message: Message,
    session: AsyncSession,
    teller: JokeTeller,
) -> None:
    if callback_data.name not in teller.method_names():
        await query.answer(texts.METHOD_UNKNOWN, show_alert=True)
        return
    current = await teller.user_method(session, query.from_user.id)
    display = teller.display_name(callback_data.name)
    if current == callback_data.name:
        await query.answer(texts.METHOD_ALREADY.format(method=display))
        return
    await storage.touch_user(session, query.from_user.id)
    await storage.set_user_method(session, query.from_user.id, callback_data.name)
    await query.answer(texts.METHOD_SWITCHED.format(method=display))
    with suppress(TelegramBadRequest):  # "message is not modified" and friends
        await message.edit_reply_markup(
            reply_markup=method_keyboard(teller.registry.methods(), callback_data.name)
        )


def build_router() -> Router:
    router = Router(name="methods")
    router.message.register(method_command, Command("method"), F.from_user)
    router.callback_query.register(open_picker, PickerCb.filter(), F.message.as_("message"))
    router.callback_query.register(choose_method, MethodCb.filter(), F.message.as_("message"))
    return router
