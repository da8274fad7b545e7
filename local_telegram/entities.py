"""Message text the way Telegram counts it: UTF-16 entity offsets, trimming, users' entities.

The bot sends plain text (no parse_mode, no entities), so the server never parses markup; it
only needs what Telegram does to every text: trim it (entities follow), and attach the commands,
@mentions, hashtags and links it finds in what users type.
"""

from __future__ import annotations

import re
from typing import Any

Entity = dict[str, Any]


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def strip_text(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Telegram trims leading and trailing whitespace from message text; entities follow."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    limit = utf16_len(stripped)
    kept: list[Entity] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, limit)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


_AUTO_RE = re.compile(
    r"(?P<command>(?<![\w/])/[a-zA-Z0-9_]{1,64}(?:@[a-zA-Z0-9_]{3,32})?(?![\w@]))"
    r"|(?P<mention>(?<![\w@])@[a-zA-Z0-9_]{3,32}(?![\w@]))"
    r"|(?P<hashtag>(?<![\w#])#\w+)"
    r"|(?P<url>\bhttps?://[^\s]+)"
)


def auto_entities(text: str) -> list[Entity]:
    """The bot_command, mention, hashtag and url entities Telegram attaches to a user's text."""
    entities: list[Entity] = []
    for match in _AUTO_RE.finditer(text):
        kind = match.lastgroup or ""
        entities.append(
            {
                "type": "bot_command" if kind == "command" else kind,
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group()),
            }
        )
    return entities
