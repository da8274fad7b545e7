"""How a joke travels between chats: the reference `j<id>` and the joke it names.

The same reference is the inline query of the «📤 Поделиться» button (Telegram types
`@bot j12` into the chat the user picks; the inline handler offers that joke) and the payload
of a deep link (`t.me/bot?start=j12`, `aiogram.utils.deep_linking.create_start_link`), so one
parser serves both and a shared joke reads the same wherever it lands.

Anything that is not exactly a reference (other text, an id SQLite cannot hold) names no joke:
callers answer it like a missing joke, never with an error.
"""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

import storage

_REFERENCE = re.compile(r"[jJ]([1-9][0-9]{0,18})")
_MAX_ID = 2**63  # SQLite INTEGER


def joke_ref(joke_id: int) -> str:
    """The reference a share button and a deep link carry for this joke."""
    return f"j{joke_id}"


def parse_joke_ref(text: str | None) -> int | None:
    """The joke id in a reference (`j12`, surrounding spaces allowed), or None."""
    if not text:
        return None
    match = _REFERENCE.fullmatch(text.strip())
    if match is None:
        return None
    joke_id = int(match.group(1))
    return joke_id if joke_id < _MAX_ID else None


async def shared_joke(session: AsyncSession, query: str | None) -> storage.JokeCard | None:
    """The existing joke an inline query or deep-link payload names, or None.

    Storage errors (`storage.StorageError`) propagate: the caller decides how to say so.
    """
    joke_id = parse_joke_ref(query)
    if joke_id is None:
        return None
    return await storage.joke_by_id(session, joke_id)
