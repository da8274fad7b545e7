"""What the local Bot API server remembers of inline mode: the queries users typed, the bot's
answers, Telegram's cache of those answers, and the messages posted by picking a result.

Telegram's rules kept here: an answer is taken once and only while the query is fresh; an answer
with `cache_time` is reused for the same query text (per user when `is_personal`) without asking
the bot again; a picked result becomes a message "via @bot" in the chat where the query was
typed, addressed from then on by an opaque `inline_message_id`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from local_telegram.records import ChatMessage

#: how long Telegram takes an answer to an inline query
INLINE_QUERY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class InlineAnswer:
    """The bot's answerInlineQuery, as given (results are Telegram's InlineQueryResult dicts)."""

    results: list[dict[str, Any]]
    cache_time: int
    is_personal: bool
    next_offset: str
    button: dict[str, Any] | None
    at: float  # time.monotonic()
    seq: int

    def result(self, result_id: str) -> dict[str, Any] | None:
        return next((r for r in self.results if str(r.get("id")) == result_id), None)


@dataclass(eq=False)
class InlineQueryRecord:
    """One inline query a user typed; `cached`: Telegram answered it from its cache, so the bot
    never saw it (no update_id)."""

    id: str
    user_id: int
    query: str
    chat_id: int  # where it was typed (the user's chat with the bot, or a group)
    chat_type: str  # as the update says: sender, private, group, supergroup, channel
    at: float
    update_id: int | None = None
    answer: InlineAnswer | None = None
    cached: bool = False


@dataclass(eq=False)
class InlineMessage:
    """A message posted by picking a result; `message` is its record in the chat, kept current."""

    inline_message_id: str
    query_id: str
    result_id: str
    user_id: int
    message: ChatMessage


@dataclass
class InlineState:
    """Inline mode's part of `TelegramState`.

    feedback: BotFather's inline feedback setting: with it on, every pick is reported to the bot
    as a `chosen_inline_result` update.
    """

    queries: dict[str, InlineQueryRecord] = field(default_factory=dict)
    messages: dict[str, InlineMessage] = field(default_factory=dict)
    by_chat_message: dict[tuple[int, int], str] = field(default_factory=dict)
    cache: dict[tuple[int | None, str], InlineAnswer] = field(default_factory=dict)
    feedback: bool = True
    query_timeout_s: float = INLINE_QUERY_TIMEOUT_S
    next_query: int = 1
    next_message: int = 1

    def cached_answer(self, user_id: int, query: str) -> InlineAnswer | None:
        """An answer Telegram would reuse for this user and query text now, if any."""
        now = time.monotonic()
        for key in ((user_id, query), (None, query)):
            answer = self.cache.get(key)
            if answer is not None and now - answer.at < answer.cache_time:
                return answer
        return None

    def remember(self, record: InlineQueryRecord, answer: InlineAnswer) -> None:
        record.answer = answer
        if answer.cache_time > 0:
            owner = record.user_id if answer.is_personal else None
            self.cache[(owner, record.query)] = answer

    def message_id_of(self, chat_id: int, message_id: int) -> str | None:
        """The inline_message_id of a chat message posted through inline mode, else None."""
        return self.by_chat_message.get((chat_id, message_id))
