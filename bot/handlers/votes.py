"""👍/👎 under a joke: one vote per user per joke, stored before the press is acknowledged.

Who may vote: anyone who can press the button, i.e. anyone in the chat where the joke was sent,
including group members who never wrote to the bot (they become a user row with their id only).
A vote is refused when the joke does not exist (any more) or belongs to another chat, and in a
private chat when it comes from anyone but the chat's owner: Telegram never delivers such a press,
so only forged updates do.

Order of effects: store (committed), then answer the press, then update the counts on the
keyboard. "Спасибо!" therefore always means "stored"; a press whose answer got lost may be stored
without thanks, never thanked without being stored. A failed write is answered with an alert.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.types import CallbackQuery, MaybeInaccessibleMessage
from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot import texts
from bot.callbacks import VoteCb
from bot.joke_teller import JokeTeller
from bot.keyboards import joke_keyboard
from bot.replies import answer_query, edit_keyboard


async def vote(
    query: CallbackQuery,
    callback_data: VoteCb,
    message: MaybeInaccessibleMessage,
    session: AsyncSession,
    teller: JokeTeller,
    bot: Bot,
) -> None:
    try:
        joke = await storage.get_joke(session, callback_data.joke_id)
    except storage.StorageError as error:
        teller.incidents.failed(f"read joke {callback_data.joke_id}", error)
        await answer_query(query, texts.VOTE_FAILED, alert=True)
        return
    if joke is None or joke.chat_id != message.chat.id:
        await answer_query(query, texts.NOT_FOUND, alert=True)
        return
    if message.chat.type == ChatType.PRIVATE and query.from_user.id != message.chat.id:
        # Telegram never delivers such a press: only a forged update can vote in a private chat
        await answer_query(query, texts.NOT_YOUR_CHAT, alert=True)
        return
    joke_id, method = joke.id, joke.method
    try:
        tally = await storage.record_vote(
            session, joke_id=joke_id, user_id=query.from_user.id, value=callback_data.value
        )
    except storage.JokeNotFound:  # deleted between the lookup and the vote
        await answer_query(query, texts.NOT_FOUND, alert=True)
        return
    except storage.StorageError as error:
        teller.incidents.failed("store a vote", error)
        await answer_query(query, texts.VOTE_FAILED, alert=True)
        return
    teller.incidents.succeeded()
    await session.close()
    thanks = texts.VOTE_THANKS if tally.user_vote is not None else texts.VOTE_REMOVED
    await answer_query(query, thanks)
    await edit_keyboard(
        bot,
        message,
        joke_keyboard(joke_id, tally.likes, tally.dislikes, teller.display_name(method)),
    )


def build_router() -> Router:
    router = Router(name="votes")
    router.callback_query.register(
        vote, VoteCb.filter(F.value.in_({1, -1})), F.message.as_("message")
    )
    return router
