"""Callback data of every inline button, as aiogram `CallbackData` factories.

Prefixes are one or two letters because Telegram allows only 64 bytes of callback data.
"""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class VoteCb(CallbackData, prefix="v"):
    joke_id: int
    value: int  # +1 like, -1 dislike


class MoreCb(CallbackData, prefix="m"):
    joke_id: int


class PickerCb(CallbackData, prefix="p"):
    """Opens the method picker (the ⚙️ button under a joke)."""


class MethodCb(CallbackData, prefix="s"):
    name: str


class RetryCb(CallbackData, prefix="r"):
    """Retries a failed generation; the token names a (prompt, method) kept in memory."""

    token: str
