"""The signed references of bot/shared_jokes.py: what Telegram accepts, and what is refused.

End to end (deep links, inline mode, the shared view's votes): tests/test_deep_links_e2e.py,
tests/test_inline_e2e.py.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

import pytest
from pydantic import SecretStr

from bot.shared_jokes import SIG_CHARS, ShareLinks, looks_like_ref
from settings import Settings

TOKEN = "100000:share-test-token"
LINKS = ShareLinks.from_secret(TOKEN)
#: Telegram's deep-link payload: up to 64 of A-Z a-z 0-9 _ -
DEEP_LINK = re.compile(r"[A-Za-z0-9_-]{1,64}")


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("joke_id", [1, 12, 999_999, 2**31, 2**63 - 1])
def test_a_reference_is_a_valid_deep_link_payload_and_reads_back(joke_id: int) -> None:
    ref = LINKS.ref(joke_id)
    assert DEEP_LINK.fullmatch(ref), ref
    assert len(ref) <= 1 + 19 + 1 + SIG_CHARS <= 64
    assert ref.startswith(f"j{joke_id}_") and len(ref) == len(f"j{joke_id}_") + SIG_CHARS
    assert LINKS.parse(ref) == joke_id and LINKS.parse(f"  {ref}\n") == joke_id
    assert looks_like_ref(ref)


def test_guessed_forged_and_borrowed_signatures_are_refused() -> None:
    ref = LINKS.ref(12)
    sig = ref.split("_", 1)[1]
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    refused = [
        "j12",  # guessed: the id alone
        f"j12_{flipped}",  # forged
        f"j12_{sig[:-1]}",  # truncated
        f"j12_{sig.lower() if sig.lower() != sig else sig.upper()}",  # case matters
        f"j13_{sig}",  # another id with a real signature
        f"j{12 + 2**64}_{sig}",
        ShareLinks.from_secret("100000:another-bot").ref(12),  # signed by another key
    ]
    for text in refused:
        assert LINKS.parse(text) is None, text
    too_long = f"j{12 + 2**64}_{sig}"
    # inline mode sends these to the share handler (its missing-joke hint), not to a draw
    assert all(looks_like_ref(text) for text in refused if text != too_long)
    assert not looks_like_ref("Молоко") and not looks_like_ref("j") and not looks_like_ref(None)


def test_the_key_comes_from_share_secret_else_from_the_token() -> None:
    from_token = ShareLinks.from_settings(settings(bot_token=SecretStr(TOKEN)))
    assert from_token.ref(12) == LINKS.ref(12)
    key = hmac.new(TOKEN.encode(), b"share-links", hashlib.sha256).digest()
    assert ShareLinks(key).ref(12) == LINKS.ref(12)  # HMAC(bot_token, "share-links")
    own = ShareLinks.from_settings(
        settings(bot_token=SecretStr(TOKEN), share_secret=SecretStr("a long random secret"))
    )
    assert own.ref(12) != LINKS.ref(12) and own.parse(LINKS.ref(12)) is None
    rotated = ShareLinks.from_settings(settings(bot_token=SecretStr("100000:rotated")))
    assert rotated.parse(LINKS.ref(12)) is None  # a new token invalidates old links
    blank = settings(bot_token=SecretStr(TOKEN), share_secret=SecretStr(""))
    assert ShareLinks.from_settings(blank).ref(12) == LINKS.ref(12)
    with pytest.raises(RuntimeError, match="SHARE_SECRET or BOT_TOKEN"):
        ShareLinks.from_settings(settings(bot_token=None))
    with pytest.raises(ValueError):
        ShareLinks.from_secret("")


def test_the_key_is_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    secret = "never-show-this-secret"
    links = ShareLinks.from_settings(settings(share_secret=SecretStr(secret)))
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("links: %r %s", links, links)
    shown = repr(links) + str(links) + caplog.text
    key = hmac.new(secret.encode(), b"share-links", hashlib.sha256).digest()
    assert secret not in shown and key.hex() not in shown and repr(key) not in shown
    assert secret not in repr(settings(share_secret=SecretStr(secret)))
