"""How a joke travels between chats: the signed reference `j<id>_<sig>` and the joke it names.

The same reference is the inline query of the «📤 Поделиться» button (Telegram types
`@bot j12_…` into the chat the user picks; the inline handler offers that joke) and the payload
of a deep link (`t.me/bot?start=j12_…`), so one parser serves both and a shared joke reads the
same wherever it lands.

Why signed: joke ids are sequential, and a joke may be written from someone's private starting
word (a name, say). A bare `j<id>` would let anyone read every stored joke by counting; the
signature (a truncated HMAC-SHA256 of the id under a server key) makes a reference something
only the bot hands out. The key comes from SHARE_SECRET, else from BOT_TOKEN, each run through
HMAC with a fixed label; changing either (rotating the token, say) invalidates every link given
out before. The key is never logged and never shown by `repr`.

Anything that is not exactly a reference signed by this bot (other text, an id SQLite cannot
hold, a guessed or forged signature) names no joke: callers answer it like a missing joke or a
malformed link, never with an error, and change nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from sqlalchemy.ext.asyncio import AsyncSession

import storage
from settings import Settings

LABEL = b"share-links"
#: signature bytes: 9 give 12 base64url characters without padding (72 bits)
SIG_BYTES = 9
SIG_CHARS = 12
_SIG = f"[A-Za-z0-9_-]{{{SIG_CHARS}}}"
_REFERENCE = re.compile(rf"[jJ]([1-9][0-9]{{0,18}})_({_SIG})")
#: what a reference looks like, signed correctly or not (inline mode sends these to the share
#: handler, so a guessed `j12` gets the missing-joke hint instead of a model call)
REFERENCE_SHAPE = re.compile(r"[jJ][1-9][0-9]{0,18}(?:_[A-Za-z0-9_-]{0,40})?")
_MAX_ID = 2**63  # SQLite INTEGER


def looks_like_ref(text: str | None) -> bool:
    """True for text shaped like a reference (`j12`, `j12_…`), whether or not it is signed."""
    return bool(text) and REFERENCE_SHAPE.fullmatch(str(text).strip()) is not None


class ShareLinks:
    """Signs and checks joke references under one key; built once per dispatcher
    (`bot/dispatcher.py`) and handed to handlers as workflow data `share_links`."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("a share-link key must not be empty")
        self._key = key

    @classmethod
    def from_secret(cls, secret: str) -> ShareLinks:
        """The links of a bot whose SHARE_SECRET (or, without one, BOT_TOKEN) is `secret`."""
        if not secret:
            raise ValueError("a share-link secret must not be empty")
        return cls(hmac.new(secret.encode(), LABEL, hashlib.sha256).digest())

    @classmethod
    def from_settings(cls, settings: Settings) -> ShareLinks:
        """SHARE_SECRET when set, else BOT_TOKEN (so a bot works without configuring one)."""
        secret = settings.share_secret or settings.bot_token
        if secret is None:
            raise RuntimeError("share links need SHARE_SECRET or BOT_TOKEN")
        return cls.from_secret(secret.get_secret_value())

    def __repr__(self) -> str:
        return "ShareLinks(<key hidden>)"

    def seal(self, joke_id: int) -> str:
        """The signature of a joke id (also carried by the shared view's vote buttons)."""
        digest = hmac.new(self._key, f"joke:{joke_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:SIG_BYTES]).decode()

    def verify(self, joke_id: int, sig: str) -> bool:
        return hmac.compare_digest(self.seal(joke_id).encode(), sig.encode())

    def ref(self, joke_id: int) -> str:
        """The reference a share button and a deep link carry for this joke: at most 33
        characters of A-Z a-z 0-9 _ -, valid as a deep-link payload and as an inline query."""
        return f"j{joke_id}_{self.seal(joke_id)}"

    def parse(self, text: str | None) -> int | None:
        """The joke id in a reference signed with this key (surrounding spaces allowed), or
        None for anything else."""
        if not text:
            return None
        match = _REFERENCE.fullmatch(text.strip())
        if match is None:
            return None
        joke_id = int(match.group(1))
        if joke_id >= _MAX_ID or not self.verify(joke_id, match.group(2)):
            return None
        return joke_id

    async def joke(self, session: AsyncSession, text: str | None) -> storage.JokeCard | None:
        """The existing joke a signed inline query or deep-link payload names, or None.

        Storage errors (`storage.StorageError`) propagate: the caller decides how to say so.
        """
        joke_id = self.parse(text)
        if joke_id is None:
            return None
        return await storage.joke_by_id(session, joke_id)


__all__ = ["REFERENCE_SHAPE", "SIG_CHARS", "ShareLinks", "looks_like_ref"]
