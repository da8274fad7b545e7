"""Inline keyboards: under every joke, the method picker, and the pages of /liked."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import (
    InlineVoteCb,
    LikedPageCb,
    MethodCb,
    MoreCb,
    PickerCb,
    RetryCb,
    SharedVoteCb,
    VoteCb,
)
from bot.shared_jokes import ShareLinks
from generation.types import MethodInfo

SHARE = "📤 Поделиться"


def joke_keyboard(
    joke_id: int,
    likes: int,
    dislikes: int,
    method_name: str,
    links: ShareLinks,
    *,
    shared: bool = False,
) -> InlineKeyboardMarkup:
    """Votes; 🔁 Ещё and 📤 (Telegram asks where to, then types `@bot j<id>_<sig>` there,
    signed by `links`); ⚙️.

    shared: the joke was opened from a link in a chat other than its own: its votes go to the
    handler that allows that, signed as the link was, and there is no 🔁
    (`bot/handlers/shared.py` says why).
    """
    builder = InlineKeyboardBuilder()
    for text, value in ((f"👍 {likes}", 1), (f"👎 {dislikes}", -1)):
        data = (
            SharedVoteCb(joke_id=joke_id, value=value, sig=links.seal(joke_id))
            if shared
            else VoteCb(joke_id=joke_id, value=value)
        )
        builder.button(text=text, callback_data=data)
    if not shared:
        builder.button(text="🔁 Ещё", callback_data=MoreCb(joke_id=joke_id))
    builder.button(text=SHARE, switch_inline_query=links.ref(joke_id))
    builder.button(text=f"⚙️ {method_name}", callback_data=PickerCb())
    builder.adjust(2, 1 if shared else 2, 1)
    return builder.as_markup()


def liked_keyboard(
    owner: int, places: Sequence[tuple[int, int]], page: int, pages: int, links: ShareLinks
) -> InlineKeyboardMarkup:
    """A page of /liked: «📤 N» shares joke number N of the list; ◀️ ▶️ turn the page in place.

    places: (number in the list, joke id) of the jokes on this page.
    """
    builder = InlineKeyboardBuilder()
    builder.row(
        *(
            InlineKeyboardButton(text=f"📤 {place}", switch_inline_query=links.ref(joke_id))
            for place, joke_id in places
        )
    )
    turns = []
    if page > 1:
        turns.append(("◀️", page - 1))
    if page < pages:
        turns.append(("▶️", page + 1))
    builder.row(
        *(
            InlineKeyboardButton(
                text=arrow, callback_data=LikedPageCb(owner=owner, page=target).pack()
            )
            for arrow, target in turns
        )
    )
    return builder.as_markup()


def retry_keyboard(token: str) -> InlineKeyboardMarkup:
    """Offered with an apology when a generation failed; retries the same word and method."""
    builder = InlineKeyboardBuilder()
    builder.button(text="🔁 Ещё раз", callback_data=RetryCb(token=token))
    return builder.as_markup()


def method_keyboard(methods: Sequence[MethodInfo], current: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for method in methods:
        mark = "✅ " if method.name == current else ""
        builder.button(
            text=f"{mark}{method.display_name}", callback_data=MethodCb(name=method.name)
        )
    builder.adjust(1)
    return builder.as_markup()


def inline_joke_keyboard(
    joke_id: int, likes: int, dislikes: int, prompt: str, links: ShareLinks
) -> InlineKeyboardMarkup:
    """Under a joke posted through inline mode, in someone else's chat: votes; 🔁 Ещё types
    `@bot <word>` into that chat again (its chat is unknown to the bot, so no callback could
    send a joke there); 📤 shares it into yet another chat. The votes carry the joke's
    signature under `links` (`InlineVoteCb` says why)."""
    builder = InlineKeyboardBuilder()
    sig = links.seal(joke_id)
    for text, value in ((f"👍 {likes}", 1), (f"👎 {dislikes}", -1)):
        builder.button(text=text, callback_data=InlineVoteCb(joke_id=joke_id, value=value, sig=sig))
    builder.button(text="🔁 Ещё", switch_inline_query_current_chat=prompt)
    builder.button(text=SHARE, switch_inline_query=links.ref(joke_id))
    builder.adjust(2, 2)
    return builder.as_markup()
