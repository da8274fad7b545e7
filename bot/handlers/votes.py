"""👍/👎 under a joke: one vote per user per joke, stored before the press is acknowledged.

Who may vote: anyone who can press the button, i.e. anyone in the chat where the joke was sent,
including group members who never wrote to the bot (they become a user row with their id only).
A vote is refused when the joke does not exist (any more) or belongs to another chat, and in a
private chat when it comes from anyone but the chat's owner: Telegram never delivers such a press,
so only forged updates do.

Order of effects: store (committed), then answer the press, then update the counts on the
keyboard. "Спасибо!" therefore always means "stored"; a press whose answer got lost may be stored
without thanks, never thanked without being stored. A failed write is answered with an alert.

Jokes posted through inline mode (bot/handlers/inline.py) live in chats the bot does not know:
their presses carry an `inline_message_id` and no message, and every press on an existing joke
counts, whoever makes it: the chat is unknown, so there is no owner to check, and a joke can be
shown in several such messages (shared with 📤), so the message cannot be checked either. What
is checked instead is the joke id's signature in the button (`InlineVoteCb`, signed like a
share link, `bot/shared_jokes.py`): a modified client can send any callback data, and a forged
press naming another joke would list that joke in the forger's /liked and put its starting word
into the 🔁 they see. A wrong signature is answered like a missing joke (as the shared view
does) before anything is read or stored; old unsigned data (`v:<id>:<value>`) under an inline
message matches no handler here and is a stale button. The first vote on a joke offered inline
but not reported as picked (Telegram reports picks only with inline feedback on) marks it
picked: the message exists, so someone posted it.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.types import CallbackQuery, MaybeInaccessibleMessage
from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot import texts
from bot.callbacks import InlineVoteCb, VoteCb
from bot.inline_replies import edit_inline_keyboard
from bot.joke_teller import JokeTeller
from bot.keyboards import inline_joke_keyboard, joke_keyboard
from bot.replies import answer_query, edit_keyboard
from bot.shared_jokes import ShareLinks


async def vote(
    query: CallbackQuery,
    callback_data: VoteCb,
    message: MaybeInaccessibleMessage,
    session: AsyncSession,
    teller: JokeTeller,
    share_links: ShareLinks,
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
    tally = await _record(query, callback_data.value, joke_id, session, teller)
    if tally is not None:
        method = teller.display_name(method)
        markup = joke_keyboard(joke_id, tally.likes, tally.dislikes, method, share_links)
        await edit_keyboard(bot, message, markup)


async def vote_inline(
    query: CallbackQuery,
    callback_data: InlineVoteCb,
    inline_message_id: str,
    session: AsyncSession,
    teller: JokeTeller,
    share_links: ShareLinks,
    bot: Bot,
) -> None:
    """A press under a joke posted through inline mode (see the module's docstring)."""
    if not share_links.verify(callback_data.joke_id, callback_data.sig):
        await answer_query(query, texts.NOT_FOUND, alert=True)  # as a missing joke: no hint
        return
    try:
        joke = await storage.get_joke(session, callback_data.joke_id)
        if joke is not None and joke.inline_chosen is False:
            await storage.mark_inline_chosen(session, joke.id, inline_message_id=inline_message_id)
    except storage.StorageError as error:
        teller.incidents.failed(f"read joke {callback_data.joke_id}", error)
        await answer_query(query, texts.VOTE_FAILED, alert=True)
        return
    if joke is None:
        await answer_query(query, texts.NOT_FOUND, alert=True)
        return
    joke_id, prompt = joke.id, joke.prompt
    tally = await _record(query, callback_data.value, joke_id, session, teller)
    if tally is not None:
        markup = inline_joke_keyboard(joke_id, tally.likes, tally.dislikes, prompt, share_links)
        await edit_inline_keyboard(bot, inline_message_id, markup)


async def _record(
    query: CallbackQuery, value: int, joke_id: int, session: AsyncSession, teller: JokeTeller
) -> storage.VoteTally | None:
    """Store the press and thank for it; None (after an alert) when nothing was stored."""
    try:
        tally = await storage.record_vote(
            session, joke_id=joke_id, user_id=query.from_user.id, value=value
        )
    except storage.JokeNotFound:  # deleted between the lookup and the vote
        await answer_query(query, texts.NOT_FOUND, alert=True)
        return None
    except storage.StorageError as error:
        teller.incidents.failed("store a vote", error)
        await answer_query(query, texts.VOTE_FAILED, alert=True)
        return None
    teller.incidents.succeeded()
    await session.close()
    thanks = texts.VOTE_THANKS if tally.user_vote is not None else texts.VOTE_REMOVED
    await answer_query(query, thanks)
    return tally


def build_router() -> Router:
    router = Router(name="votes")
    router.callback_query.register(
        vote, VoteCb.filter(F.value.in_({1, -1})), F.message.as_("message")
    )
    router.callback_query.register(
        vote_inline,
        InlineVoteCb.filter(F.value.in_({1, -1})),
        F.inline_message_id.as_("inline_message_id"),
    )
    return router
