"""Answering inline queries and editing inline messages, the way `bot/replies.py` does it for
chats: Telegram's harmless refusals (a query answered too late, an edit of a message that is gone
or unchanged) and its outages are logged, never raised.

Every inline query gets an answer: a spinner that never stops reads as a broken bot. When there
are no jokes to offer (bad input, busy, throttled, a failure) the answer is one hint: an article
whose title says what to do and whose message, should the user tap it anyway, only explains the
bot. Hints that depend on the query alone may be cached by Telegram; those about the moment
(busy, too fast) are not, so the same query typed again a second later is asked anew.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    InlineKeyboardMarkup,
    InlineQuery,
    InlineQueryResultArticle,
    InputTextMessageContent,
)

from bot import texts
from bot.replies import HARMLESS_EDIT, HARMLESS_QUERY, UNAVAILABLE

log = logging.getLogger(__name__)

HINT_ID = "hint"  # never a joke id (those are digits), so a picked hint changes nothing
#: seconds Telegram may keep a hint that depends on the query alone (empty, too long, ...)
STATIC_HINT_CACHE_S = 60


def _harmless(error: TelegramBadRequest, reasons: tuple[str, ...]) -> bool:
    text = error.message.lower()
    return any(reason in text for reason in reasons)


async def answer_inline(
    query: InlineQuery,
    results: Sequence[InlineQueryResultArticle],
    *,
    cache_time: int,
) -> bool:
    """Answer an inline query (personal: results depend on the user's method and limits);
    False when Telegram no longer takes the answer or could not be reached."""
    try:
        await query.answer(list(results), cache_time=max(0, cache_time), is_personal=True)
    except TelegramBadRequest as error:
        if not _harmless(error, HARMLESS_QUERY):
            raise
        log.info("inline query %s not answered: %s", query.id, error.message)
        return False
    except UNAVAILABLE as error:
        log.warning("answer to inline query %s lost: %s", query.id, type(error).__name__)
        return False
    return True


async def hint_article(bot: Bot | None, title: str, description: str) -> InlineQueryResultArticle:
    """The one result shown instead of jokes; tapped, it posts what the bot does. `{bot}` in
    the texts becomes the bot's username."""
    username = "bot"
    if bot is not None:
        try:
            me = await bot.me()  # cached by aiogram after the first call
            username = me.username or username
        except Exception as error:  # cosmetic: a hint without the name is still a hint
            log.debug("no username for the inline hint: %s", type(error).__name__)
    def named(text: str) -> str:  # replace, not format: a hint may quote braces
        return text.replace("{bot}", username)

    return InlineQueryResultArticle(
        id=HINT_ID,
        title=named(title),
        description=named(description),
        input_message_content=InputTextMessageContent(
            message_text=named(texts.INLINE_HINT_MESSAGE)
        ),
    )


async def answer_hint(
    query: InlineQuery, title: str, description: str = "", *, cache_time: int = 0
) -> bool:
    """Answer with one hint; `cache_time` 0 (the default) for hints about the moment."""
    article = await hint_article(query.bot, title, description)
    return await answer_inline(query, [article], cache_time=cache_time)


async def edit_inline_keyboard(
    bot: Bot, inline_message_id: str, markup: InlineKeyboardMarkup
) -> bool:
    """Replace the keyboard of a message posted through inline mode; False if there was nothing
    (left) to change: the same counts, a message deleted or too old."""
    try:
        await bot.edit_message_reply_markup(
            inline_message_id=inline_message_id, reply_markup=markup
        )
    except TelegramBadRequest as error:
        if not _harmless(error, HARMLESS_EDIT):
            raise
        log.debug("inline message %s not edited: %s", inline_message_id, error.message)
        return False
    except UNAVAILABLE as error:
        log.warning("inline message %s not updated: %s", inline_message_id, type(error).__name__)
        return False
    return True
