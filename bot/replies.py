"""Answering button presses and updating keyboards without tripping over Telegram's refusals.

Telegram refuses, with a 400, what is harmless for us: answering a callback query a second time or
too late ("query is too old"), an edit that changes nothing ("message is not modified"), an edit of
a message that is gone or too old. Those are expected in normal use (double taps, retries after a
lost answer, slow generations) and are not errors; any other 400 still raises.

Both are also best effort when Telegram is failing (5xx, dropped connections, flood control, even
after `RetryMiddleware`'s retry): by then the work is done (a vote is stored), and giving up on
the rest of the handler, or having the error handler answer "something went wrong", would tell
the user the opposite of what happened. A lost answer only stops the button's spinner later; a
lost keyboard edit leaves old counts until the next press.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, MaybeInaccessibleMessage

from bot.resilience import TRANSIENT

log = logging.getLogger(__name__)

#: Telegram failing, not refusing: still so after one retry.
UNAVAILABLE = (*TRANSIENT, TelegramRetryAfter)

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


async def _best_effort(
    call: Awaitable[object], harmless: tuple[str, ...], refused: str, lost: str, level: int
) -> bool:
    """Await a Bot API call; False when Telegram refused it for one of the `harmless` reasons
    (logged at `level`) or was unavailable (a warning). Any other refusal raises."""
    try:
        await call
    except TelegramBadRequest as exc:
        if not _harmless(exc, harmless):
            raise
        log.log(level, "%s: %s", refused, exc.message)
        return False
    except UNAVAILABLE as exc:
        log.warning("%s: %s", lost, type(exc).__name__)
        return False
    return True


async def answer_query(
    query: CallbackQuery, text: str | None = None, *, alert: bool = False
) -> bool:
    """Answer a button press; False if Telegram no longer takes an answer for it."""
    return await _best_effort(
        query.answer(text, show_alert=alert),
        HARMLESS_QUERY,
        refused=f"callback query {query.id} not answered",
        lost=f"answer to callback query {query.id} lost",
        level=logging.INFO,
    )


async def edit_keyboard(
    bot: Bot, message: MaybeInaccessibleMessage, markup: InlineKeyboardMarkup
) -> bool:
    """Replace a message's inline keyboard; False if there was nothing (left) to change.

    Works on inaccessible (old) messages too, which have no edit methods of their own.
    """
    return await edit_message(bot, message, markup)


async def edit_message(
    bot: Bot,
    message: MaybeInaccessibleMessage,
    markup: InlineKeyboardMarkup,
    text: str | None = None,
) -> bool:
    """Replace a message's inline keyboard and, when `text` is given, its text (one call, so
    the two never disagree); False if there was nothing (left) to change."""
    chat_id, message_id = message.chat.id, message.message_id
    call = (
        bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id, reply_markup=markup)
        if text is None
        else bot.edit_message_text(
            chat_id=chat_id, message_id=message_id, text=text, reply_markup=markup
        )
    )
    return await _best_effort(
        call,
        HARMLESS_EDIT,
        refused=f"message {message_id} not edited",
        lost=f"message {message_id} not updated",
        level=logging.DEBUG,
    )
