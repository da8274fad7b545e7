"""/liked: the jokes I gave a 👍, newest like first, a page at a time.

👍 is the like: there is no separate ❤️ button, since a 👍 already says "I like it". The list
holds every joke the user liked, whoever it was written for (group jokes included).

A page is one message; ◀️ ▶️ edit it in place. Only the list's owner can turn its pages (the
buttons carry the owner's id; in a group anyone else gets a hint). A stale ▶️ (after unlikes
shortened the list) shows the last page there is, or the empty-list hint. Turning pages reads
only: nothing is stored.
"""

from __future__ import annotations

import math

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, MaybeInaccessibleMessage, Message
from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot import texts
from bot.callbacks import LikedPageCb
from bot.keyboards import liked_keyboard
from bot.replies import answer_query, edit_message
from bot.shared_jokes import ShareLinks

PAGE_SIZE = 5
ITEM_CHARS = 700  # a full page stays under Telegram's 4096 even with the longest jokes
NO_KEYBOARD = InlineKeyboardMarkup(inline_keyboard=[])


def _clip(text: str) -> str:
    return text if len(text) <= ITEM_CHARS else text[: ITEM_CHARS - 1].rstrip() + "…"


async def render_page(
    session: AsyncSession, owner: int, requested: int, links: ShareLinks
) -> tuple[str, InlineKeyboardMarkup, int]:
    """The text and keyboard of page `requested` of `owner`'s list, or of its last page when
    the list is shorter now; the page shown comes third (0: the list is empty)."""
    total = await storage.count_liked(session, owner)
    if total == 0:
        return texts.LIKED_EMPTY, NO_KEYBOARD, 0
    pages = math.ceil(total / PAGE_SIZE)
    page = min(requested, pages)
    offset = (page - 1) * PAGE_SIZE
    jokes = await storage.liked_jokes(session, owner, offset, PAGE_SIZE)
    places = list(enumerate((joke.id for joke in jokes), start=offset + 1))
    parts = [texts.LIKED_HEADER.format(count=total, page=page, pages=pages)]
    parts += [
        texts.LIKED_ITEM.format(
            place=place, text=_clip(joke.text), likes=joke.likes, dislikes=joke.dislikes
        )
        for (place, _), joke in zip(places, jokes, strict=True)
    ]
    return "\n\n".join(parts), liked_keyboard(owner, places, page, pages, links), page


async def liked(message: Message, session: AsyncSession, share_links: ShareLinks) -> None:
    assert message.from_user is not None
    text, markup, _ = await render_page(session, message.from_user.id, 1, share_links)
    await message.answer(text, reply_markup=markup if markup.inline_keyboard else None)


async def turn_page(
    query: CallbackQuery,
    callback_data: LikedPageCb,
    message: MaybeInaccessibleMessage,
    session: AsyncSession,
    share_links: ShareLinks,
    bot: Bot,
) -> None:
    if query.from_user.id != callback_data.owner:
        await answer_query(query, texts.LIKED_NOT_YOURS, alert=True)
        return
    text, markup, page = await render_page(
        session, callback_data.owner, callback_data.page, share_links
    )
    await session.close()
    moved = 0 < page != callback_data.page  # the list got shorter since the button was made
    await answer_query(query, texts.LIKED_PAGE_GONE if moved else None)
    await edit_message(bot, message, markup, text=text)


def build_router() -> Router:
    router = Router(name="liked")
    router.message.register(liked, Command("liked"), F.from_user)
    router.callback_query.register(turn_page, LikedPageCb.filter(), F.message.as_("message"))
    return router
