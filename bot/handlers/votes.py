"""👍/👎 under a joke: one vote per user per joke, stored before the press is acknowledged."""

from __future__ import annotations

import logging
from contextlib import suppress

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot import texts
from bot.callbacks import VoteCb
from bot.joke_teller import JokeTeller
from bot.keyboards import joke_keyboard

log = logging.getLogger(__name__)


async def vote(
    query: CallbackQuery,
    callback_data: VoteCb,
    message: Message,
    session: AsyncSession,
    teller: JokeTeller,
) -> None:
    joke = await storage.get_joke(session, callback_data.joke_id)
    if joke is None or joke.chat_id != message.chat.id:
        await query.answer(texts.NOT_FOUND, show_alert=True)
        return
    try:
        await storage.touch_user(session, query.from_user.id)
        tally = await storage.record_vote(
            session, joke_id=joke.id, user_id=query.from_user.id, value=callback_data.value
        )
    except storage.JokeNotFound:  # deleted between the lookup and the vote
        await query.answer(texts.NOT_FOUND, show_alert=True)
        return
    except storage.StorageError:
        log.exception("could not store a vote")
        await query.answer(texts.VOTE_FAILED, show_alert=True)
        return
    await query.answer(texts.VOTE_THANKS if tally.user_vote is not None else texts.VOTE_REMOVED)
    with suppress(TelegramBadRequest):  # the counts may already be shown: "not modified"
        await message.edit_reply_markup(
            reply_markup=joke_keyboard(
                joke.id, tally.likes, tally.dislikes, teller.display_name(joke.method)
            )
        )


def build_router() -> Router:
    router = Router(name="votes")
    router.callback_query.register(
        vote, VoteCb.filter(F.value.in_({1, -1})), F.message.as_("message")
    )
    return router
