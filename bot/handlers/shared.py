"""A joke opened from a shared link (`t.me/bot?start=j12_<sig>`), in the opener's private chat.

It comes with its buttons: 👍/👎, 📤 and ⚙️. Its votes count as usual: they are the opener's
votes on that joke (a 👍 puts it in their /liked). They carry their own callback data
(`SharedVoteCb`) because the joke belongs to another chat, which the ordinary vote handler
refuses on purpose. Allowing it here gives nothing away only because the buttons carry the
link's signature (`bot/shared_jokes.py`): whoever can press them could open the link anyway,
while a forged press on a joke whose link they were never given is answered like a missing joke.
Such a press is taken only in a private chat and only from its owner (Telegram delivers no
other; forged ones get an alert and change nothing).

There is no 🔁 Ещё: this chat has no runners-up of the joke's draw, and a fresh beam-search draw
for the same word would most likely repeat the very joke shown.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.types import CallbackQuery, MaybeInaccessibleMessage, Message
from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot import texts
from bot.callbacks import SharedVoteCb
from bot.joke_teller import JokeTeller
from bot.keyboards import joke_keyboard
from bot.replies import answer_query, edit_keyboard
from bot.shared_jokes import ShareLinks


async def send_shared(
    message: Message, joke: storage.JokeCard, teller: JokeTeller, links: ShareLinks
) -> None:
    """Show a shared joke with its current counts and the shared-view buttons."""
    method = teller.display_name(joke.method)
    markup = joke_keyboard(joke.id, joke.likes, joke.dislikes, method, links, shared=True)
    await message.answer(joke.text, reply_markup=markup)


async def _refused(query: CallbackQuery, message: MaybeInaccessibleMessage) -> bool:
    """Answer (and return True) a press that cannot come from a shared view's owner."""
    if message.chat.type != ChatType.PRIVATE:
        await answer_query(query, texts.STALE_BUTTON, alert=True)
        return True
    if query.from_user.id != message.chat.id:
        await answer_query(query, texts.NOT_YOUR_CHAT, alert=True)
        return True
    return False


async def shared_vote(
    query: CallbackQuery,
    callback_data: SharedVoteCb,
    message: MaybeInaccessibleMessage,
    session: AsyncSession,
    teller: JokeTeller,
    share_links: ShareLinks,
    bot: Bot,
) -> None:
    """Stored first, then thanked, then the counts updated (as `bot/handlers/votes.py`)."""
    if await _refused(query, message):
        return
    if not share_links.verify(callback_data.joke_id, callback_data.sig):
        await answer_query(query, texts.NOT_FOUND, alert=True)  # as a missing joke: no hint
        return
    try:
        joke = await storage.get_joke(session, callback_data.joke_id)
        if joke is None:
            raise storage.JokeNotFound(callback_data.joke_id)
        method = joke.method
        tally = await storage.record_vote(
            session, joke_id=joke.id, user_id=query.from_user.id, value=callback_data.value
        )
    except storage.JokeNotFound:
        await answer_query(query, texts.NOT_FOUND, alert=True)
        return
    except storage.StorageError as error:
        teller.incidents.failed("store a vote", error)
        await answer_query(query, texts.VOTE_FAILED, alert=True)
        return
    teller.incidents.succeeded()
    await session.close()
    await answer_query(query, texts.VOTE_THANKS if tally.user_vote else texts.VOTE_REMOVED)
    method = teller.display_name(method)
    markup = joke_keyboard(
        callback_data.joke_id, tally.likes, tally.dislikes, method, share_links, shared=True
    )
    await edit_keyboard(bot, message, markup)


def build_router() -> Router:
    router = Router(name="shared")
    router.callback_query.register(
        shared_vote, SharedVoteCb.filter(F.value.in_({1, -1})), F.message.as_("message")
    )
    return router
