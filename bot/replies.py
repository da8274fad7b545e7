"""Answering button presses and updating keyboards without tripping over Telegram's refusals.

Telegram refuses, with a 400, what is harmless for us: answering a callback query a second time or
too late ("query is too old"), an edit that changes nothing ("message is not modified"), an edit of
a message that is gone or too old. Those are expected in normal use (double taps, retries after a
lost answer, slow generations) and are not errors; anything else still raises.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, MaybeInaccessibleMessage

log = logging.getLogger(__name__)

HARMLESS_QUERY = ("query is too old", "query id is invalid")
HARMLESS_EDIT = (
    "message is not modified",
    "message to edit not found",
    "message can't be edited",
    "message_id_invalid",
)


def _harmless(exc: TelegramBadRequest, reasons: tuple[str, ...]) -> bool:
    text = exc.message.lower()
    return any(reason in text for reason in reasons)


async def answer_query(
    query: CallbackQuery, text: str | None = None, *, alert: bool = False
) -> bool:
    """Answer a button press; False if Telegram no longer takes an answer for it."""
    try:
        await query.answer(text, show_alert=alert)
    except TelegramBadRequest as exc:
        if not _harmless(exc, HARMLESS_QUERY):
            raise
        log.info("callback query %s not answered: %s", query.id, exc.message)
        return False
    return True


async def edit_keyboard(
    bot: Bot, message: MaybeInaccessibleMessage, markup: InlineKeyboardMarkup
) -> bool:
    """Replace a message's inline keyboard; False if there was nothing (left) to change.

    Works on inaccessible (old) messages too, which have no edit methods of their own.
    """
    try:
        await bot.edit_message_reply_markup(
            chat_id=message.chat.id, message_id=message.message_id, reply_markup=markup
        )
    except TelegramBadRequest as exc:
        if not _harmless(exc, HARMLESS_EDIT):
            raise
        log.debug("keyboard of message %d not edited: %s", message.message_id, exc.message)
        return False
    return True
