"""The local Bot API server with what only tests ask of it.

`local_telegram.LocalBotApi` keeps what the bot, the web chat and the benchmarks need; this
subclass adds the tests' extra moves (raw updates, a user editing or blocking, an aiogram Bot
wired to the server) and checks (edits, chat actions, silence). Tests import `LocalBotApi` from
here; it is the same server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

import local_telegram
from local_telegram.entities import auto_entities
from local_telegram.records import Chat, ChatAction, ChatMessage, Edit

if TYPE_CHECKING:
    from aiogram import Bot

_MESSAGE_KEYS = ("message", "channel_post")
_OWN_FIELDS = ("message_id", "date", "chat", "from", "text", "entities")


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    """One row of inline buttons from (text, callback_data) pairs, for bots written in tests."""
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d) for t, d in pairs]]
    )


class LocalBotApi(local_telegram.LocalBotApi):
    """`local_telegram.LocalBotApi` plus test-only moves and checks."""

    def make_bot(self, **kwargs: Any) -> Bot:
        """An aiogram Bot wired to this server (the caller closes `bot.session`)."""
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        session = AiohttpSession(api=TelegramAPIServer.from_base(self.url))
        return Bot(token=self.token, session=session, **kwargs)

    # --- what users do -------------------------------------------------------------------------

    def block_user(self, user_id: int, blocked: bool = True) -> None:
        """The user blocks (or unblocks) the bot: sends to them get 403 Forbidden."""
        self.ensure_chat(user_id).blocked = blocked

    def edit_user_message(self, chat_id: int, message_id: int, text: str) -> ChatMessage:
        """A user edits their message: an `edited_message` update."""
        message = self.message(chat_id, message_id)
        if message.from_bot:
            raise ValueError("edit_user_message edits users' messages; the bot edits its own")
        message.text, message.entities = text, auto_entities(text)
        self.record_edit(message)
        record = self.enqueue({"edited_message": self.message_to_api(message)})
        message.update_id = record.update_id
        return message

    def send_update(self, update: dict[str, Any]) -> int:
        """Queue any raw update (a dict as Telegram sends it); returns its update_id.

        update_id is assigned when missing. A "message" or "channel_post" with a "chat" is also
        recorded in that chat, getting message_id and date when they are missing.
        """
        payload = dict(update)
        for key in _MESSAGE_KEYS:
            body = payload.get(key)
            if isinstance(body, dict) and isinstance(body.get("chat"), dict):
                chat, message = self._record_raw_message(body)
                payload[key] = {**self.message_to_api(message), **body}
                record = self.enqueue(payload)
                message.update_id = record.update_id
                chat.mark = max(chat.mark, message.message_id)
                chat.last_user_action_at = message.at
                return record.update_id
        return self.enqueue(payload).update_id

    def _record_raw_message(self, body: dict[str, Any]) -> tuple[Chat, ChatMessage]:
        raw_chat = body["chat"]
        chat = self.ensure_chat(
            int(raw_chat["id"]),
            str(raw_chat.get("type", "private")),
            title=raw_chat.get("title"),
            first_name=raw_chat.get("first_name"),
        )
        sender = body.get("from") or {"id": chat.id, "is_bot": False, "first_name": "?"}
        message = self.new_message(
            chat,
            from_bot=False,
            sender=sender,
            text=body.get("text"),
            entities=list(body.get("entities") or []),
            extra={k: v for k, v in body.items() if k not in _OWN_FIELDS},
        )
        if "message_id" in body:  # keep the caller's id; later ones count on from it
            del chat.messages[message.message_id]
            message.message_id = int(body["message_id"])
            chat.messages[message.message_id] = message
            chat.next_message_id = max(chat.next_message_id, message.message_id + 1)
        if "date" in body:
            message.date = int(body["date"])
        return chat, message

    # --- what happened -------------------------------------------------------------------------

    def user_messages(self, chat_id: int) -> list[ChatMessage]:
        return [m for m in self.messages(chat_id) if not m.from_bot]

    def last_bot_message(self, chat_id: int) -> ChatMessage | None:
        found = self.bot_messages(chat_id)
        return found[-1] if found else None

    def chat_actions(self, chat_id: int) -> list[ChatAction]:
        chat = self.chats.get(chat_id)
        return list(chat.actions) if chat else []

    async def wait_for_edit(
        self,
        chat_id: int,
        message_id: int,
        *,
        since: float | None = None,
        timeout: float = 5.0,
    ) -> Edit:
        """The first edit of a message made at or after `since` (time.monotonic()).

        By default `since` is the user's last action in the chat, so `press_button` followed by
        `wait_for_edit` cannot miss a fast edit. The message record itself shows the latest state.
        """
        chat = self.chat(chat_id)
        floor = since if since is not None else chat.last_user_action_at

        def found() -> Edit | None:
            message = chat.messages.get(message_id)
            if message is None:
                return None
            return next((e for e in message.edits if e.at >= floor), None)

        failure = f"message #{message_id} in chat {chat_id} was not edited"
        return await self.wait_in_chat(chat_id, found, timeout, failure)

    async def wait_for_chat_action(
        self,
        chat_id: int,
        action: str = "typing",
        *,
        since: float | None = None,
        timeout: float = 5.0,
    ) -> ChatAction:
        chat = self.chat(chat_id)
        floor = since if since is not None else chat.last_user_action_at
        return await self.wait_until(
            lambda: next((a for a in chat.actions if a.action == action and a.at >= floor), None),
            timeout,
            f"chat action {action!r} in chat {chat_id}",
        )

    async def assert_no_bot_message(
        self, chat_id: int, *, after: int | None = None, wait: float = 0.3
    ) -> None:
        """Check the bot stays silent: every update confirmed, then no message for `wait` s."""
        chat = self.chats.get(chat_id)
        floor = after if after is not None else (chat.mark if chat else 0)
        await self.wait_all_updates_answered(timeout=max(wait, 5.0))
        await asyncio.sleep(wait)
        extra = [m for m in self.bot_messages(chat_id) if m.message_id > floor]
        if extra:
            raise AssertionError(f"the bot wrote in chat {chat_id}: {[m.text for m in extra]}")


@pytest.fixture
async def bot(api: LocalBotApi) -> AsyncIterator[Bot]:
    """An aiogram Bot wired to the `api` server, for tests of the server itself."""
    instance = api.make_bot()
    yield instance
    await instance.session.close()
