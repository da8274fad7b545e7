"""Inline keyboards: under every joke, and the method picker."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import MethodCb, MoreCb, PickerCb, RetryCb, VoteCb
from generation.types import MethodInfo


def joke_keyboard(
    joke_id: int, likes: int, dislikes: int, method_name: str
) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=f"👍 {likes}", callback_data=VoteCb(joke_id=joke_id, value=1))
    builder.button(text=f"👎 {dislikes}", callback_data=VoteCb(joke_id=joke_id, value=-1))
    builder.button(text="🔁 Ещё", callback_data=MoreCb(joke_id=joke_id))
    builder.button(text=f"⚙️ {method_name}", callback_data=PickerCb())
    builder.adjust(2, 2)
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
