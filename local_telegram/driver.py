"""What happened, and waiting for the bot to do something: used by the benchmarks, the web chat
and the tests.

A waiter re-checks its condition on every change of the server state (`TelegramState.changed`),
so a wait ends as soon as the bot's call has been answered, without polling.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from local_telegram.methods.profile import commands_key
from local_telegram.records import ApiCall, CallbackAnswer, Chat, ChatMessage
from local_telegram.state import TelegramState

T = TypeVar("T")


class Driver(TelegramState):
    """Lookups (`messages`, `calls_of`, ...) and waits (`wait_for_bot_message`, ...)."""

    # --- what happened ---------------------------------------------------------------------

    def chat(self, chat_id: int) -> Chat:
        try:
            return self.chats[chat_id]
        except KeyError:
            raise LookupError(f"no chat {chat_id}") from None

    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[ChatMessage]:
        """All messages of a chat in order, the bot's and users', in their current state."""
        chat = self.chats.get(chat_id)
        if chat is None:
            return []
        return [m for m in chat.messages.values() if include_deleted or not m.deleted]

    def bot_messages(self, chat_id: int) -> list[ChatMessage]:
        return [m for m in self.messages(chat_id) if m.from_bot]

    def message(self, chat_id: int, message_id: int) -> ChatMessage:
        message = self.chat(chat_id).messages.get(message_id)
        if message is None:
            raise LookupError(f"no message {message_id} in chat {chat_id}")
        return message

    def callback_answer(self, callback_query_id: str) -> CallbackAnswer | None:
        query = self.callback_queries.get(callback_query_id)
        return query.answer if query else None

    def my_commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        """Commands the bot set with setMyCommands for a scope (default scope by default)."""
        return list(self.commands.get(commands_key(scope, language_code), []))

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates the bot has not confirmed yet (delivered or not), oldest first."""
        return [record.payload for record in self.pending]

    @property
    def all_updates_answered(self) -> bool:
        """True when the bot has fetched and confirmed (by a higher offset) every update."""
        return not self.pending

    def calls_of(self, method: str) -> list[ApiCall]:
        key = method.lower()
        return [call for call in self.calls if call.method.lower() == key]

    def describe(self, chat_id: int) -> str:
        """The chat's last messages, one a line, for a timeout's error message."""
        lines = [
            f"  #{m.message_id} {'bot' if m.from_bot else 'user'}: {m.text!r}"
            + (f" buttons={m.button_texts}" if m.buttons else "")
            for m in self.messages(chat_id)[-8:]
        ]
        return "\n".join(lines) or "  (no messages)"

    # --- waiting for the bot ---------------------------------------------------------------

    async def wait_until(
        self, predicate: Callable[[], T | None], timeout: float = 5.0, what: str = "a condition"
    ) -> T:
        """Await until `predicate()` is truthy (checked on every change); return its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"waited {timeout}s for {what}")
            changed = self.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def wait_in_chat(
        self, chat_id: int, predicate: Callable[[], T | None], timeout: float, failure: str
    ) -> T:
        """`wait_until`; a timeout says `failure` and shows how the chat ends, so a test that
        waited for the wrong thing shows what the bot did instead."""
        try:
            return await self.wait_until(predicate, timeout, failure)
        except TimeoutError:
            raise TimeoutError(
                f"{failure} within {timeout}s; the chat ends with:\n{self.describe(chat_id)}"
            ) from None

    async def wait_for_bot_messages(
        self, chat_id: int, count: int, *, after: int | None = None, timeout: float = 5.0
    ) -> list[ChatMessage]:
        """The first `count` bot messages with message_id > `after`.

        after: a message_id; by default the chat's last message when a user last acted
        (send_text / press_button), i.e. "the replies to what the user just did".
        """
        chat = self.chats.get(chat_id)
        floor = after if after is not None else (chat.mark if chat else 0)

        def found() -> list[ChatMessage] | None:
            fresh = [m for m in self.bot_messages(chat_id) if m.message_id > floor]
            return fresh[:count] if len(fresh) >= count else None

        failure = f"no {count} bot message(s) after #{floor} in chat {chat_id}"
        return await self.wait_in_chat(chat_id, found, timeout, failure)

    async def wait_for_bot_message(
        self, chat_id: int, *, after: int | None = None, timeout: float = 5.0
    ) -> ChatMessage:
        """The first bot message with message_id > `after` (see `wait_for_bot_messages`)."""
        return (await self.wait_for_bot_messages(chat_id, 1, after=after, timeout=timeout))[0]

    async def wait_for_callback_answer(
        self, callback_query_id: str, timeout: float = 5.0
    ) -> CallbackAnswer:
        try:
            return await self.wait_until(
                lambda: self.callback_answer(callback_query_id), timeout, "a callback answer"
            )
        except TimeoutError:
            raise TimeoutError(
                f"callback query {callback_query_id} was not answered within {timeout}s"
            ) from None

    async def wait_all_updates_answered(self, timeout: float = 5.0) -> None:
        """Await until the bot has fetched and confirmed every queued update."""
        await self.wait_until(
            lambda: self.all_updates_answered,
            timeout,
            f"the bot to confirm updates {[r.update_id for r in self.pending]}",
        )

    async def wait_for_call(
        self, method: str, *, count: int = 1, timeout: float = 5.0
    ) -> list[ApiCall]:
        """Await until the bot has called `method` at least `count` times in all."""
        return await self.wait_until(
            lambda: (found := self.calls_of(method)) and len(found) >= count and found,
            timeout,
            f"{count} call(s) of {method}",
        )
