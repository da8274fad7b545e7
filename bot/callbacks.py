"""Callback data of every inline button, as aiogram `CallbackData` factories.

Prefixes are one or two letters because Telegram allows only 64 bytes of callback data.

Callback data comes from the client and can be forged, so fields are constrained: data that
does not fit (a joke id SQLite cannot hold, a 60-character token) does not match any button and
ends at the fallback's "this button is outdated".
"""

from __future__ import annotations

from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

JokeId = Annotated[int, Field(gt=0, lt=2**63)]  # SQLite INTEGER


class VoteCb(CallbackData, prefix="v"):
    joke_id: JokeId
    value: int  # +1 like, -1 dislike


class MoreCb(CallbackData, prefix="m"):
    joke_id: JokeId


class PickerCb(CallbackData, prefix="p"):
    """Opens the method picker (the ⚙️ button under a joke)."""


class MethodCb(CallbackData, prefix="s"):
    name: Annotated[str, Field(max_length=40)]


class RetryCb(CallbackData, prefix="r"):
    """Retries a failed generation; the token names a (prompt, method) kept in memory."""

    token: Annotated[str, Field(max_length=20)]


UserId = Annotated[int, Field(gt=0, lt=2**63)]


class LikedPageCb(CallbackData, prefix="lp"):
    """◀️/▶️ of /liked: a page of `owner`'s liked jokes (only the owner may turn it)."""

    owner: UserId
    page: Annotated[int, Field(ge=1, le=10**6)]


class SharedVoteCb(CallbackData, prefix="sv"):
    """👍/👎 under a joke opened from a shared link, in the private chat of whoever opened it
    (the joke belongs to another chat, which `VoteCb` refuses). `sig` is the link's signature
    (`bot/shared_jokes.py`): without it a forged press could vote on, and so list in /liked,
    any joke by its id."""

    joke_id: JokeId
    value: int
    sig: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{12}$")]


class InlineVoteCb(CallbackData, prefix="iv"):
    """👍/👎 under a joke posted through inline mode (the press carries an `inline_message_id`,
    not a message). Its chat is unknown, so anyone may vote; `sig` is the joke's signature
    (`ShareLinks.seal`, the one its 📤 button already carries): without it a forged press could
    vote on any joke by its id, listing it in the forger's /liked and showing its prompt in 🔁.
    Longest packed form, a 19-digit id and a 👎: 38 bytes."""

    joke_id: JokeId
    value: int
    sig: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{12}$")]
