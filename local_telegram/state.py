"""In-memory Telegram: the bot's identity, chats and messages, the update queue, and the one
change signal that wakes every waiter (long polls, test waiters, the web chat page).

The Bot API methods (`local_telegram.methods`), the simulated users (`users.py`) and the
lookups and waits (`driver.py`) all read and change this one state.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from local_telegram.inline_state import InlineState
from local_telegram.params import ApiError, Params, bad_request
from local_telegram.records import (
    ApiCall,
    CallbackQuery,
    Chat,
    ChatMessage,
    Edit,
    UpdateRecord,
)
from local_telegram.webhooks import WebhookDelivery


class TelegramState:
    """Everything the server remembers; LocalBotApi adds HTTP, users and waits on top."""

    def __init__(
        self,
        *,
        token: str,
        bot_username: str,
        bot_first_name: str,
        callback_timeout_s: float,
        first_update_id: int = 1,
    ) -> None:
        left, sep, right = token.partition(":")
        if not left.isdigit() or not sep or not right:
            raise ValueError(f"a bot token looks like '123456:ABC...', not {token!r}")
        self.token = token
        self.bot_id = int(left)
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.callback_timeout_s = callback_timeout_s
        self.users: dict[int, dict[str, Any]] = {}  # Telegram User objects of simulated users
        self.chats: dict[int, Chat] = {}
        self.updates: list[UpdateRecord] = []
        self.pending: deque[UpdateRecord] = deque()  # queued, not yet confirmed by the bot
        self._next_update_id = first_update_id
        self.callback_queries: dict[str, CallbackQuery] = {}
        self.next_query_id = 1
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.inline = InlineState()  # inline queries, answers, inline messages
        self.calls: deque[ApiCall] = deque(maxlen=100_000)
        self.allowed_updates: frozenset[str] | None = None
        self.webhooks = WebhookDelivery(self)  # setWebhook: updates are POSTed (webhooks.py)
        self.poll_generation = 0
        self._waiting_polls = 0  # getUpdates calls waiting now; bench and tests look at it
        self.seq = 0  # server-wide change counter
        self.changed = asyncio.Event()  # set (and replaced) on every change
        self.closing = False

    @property
    def bot_username(self) -> str:
        return str(self.bot_user["username"])

    def bump(self) -> int:
        """Note a change: wake every waiter (long polls, test waiters, the web page)."""
        self.seq += 1
        self.changed.set()
        self.changed = asyncio.Event()
        return self.seq

    def find_chat(self, chat_id: int) -> Chat:
        """The chat, or the 400 Telegram gives for an unknown one."""
        chat = self.chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def chat_for_send(self, params: Params) -> Chat:
        """The chat named by `chat_id`, checked as Telegram checks it before sending."""
        raw = params.raw("chat_id")
        if raw is None or raw == "":
            raise bad_request("chat_id is empty")
        chat = self.find_chat(params.int("chat_id") or 0)
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def new_message(
        self, chat: Chat, *, from_bot: bool, sender: dict[str, Any], **fields: Any
    ) -> ChatMessage:
        message = ChatMessage(
            chat_id=chat.id,
            message_id=chat.next_message_id,
            from_bot=from_bot,
            sender=sender,
            date=int(time.time()),
            at=time.monotonic(),
            **fields,
        )
        chat.next_message_id += 1
        chat.messages[message.message_id] = message
        message.seq = self.bump()
        return message

    def record_edit(self, message: ChatMessage) -> None:
        """Stamp an edit already applied to `message` and keep a copy of its new content."""
        message.edit_date = int(time.time())
        message.edits.append(
            Edit(
                text=message.text,
                entities=list(message.entities),
                reply_markup=message.reply_markup,
                at=time.monotonic(),
                date=message.edit_date,
            )
        )
        message.seq = self.bump()

    def message_to_api(self, message: ChatMessage, *, nested: bool = False) -> dict[str, Any]:
        """The Telegram Message object for a record, in its current state."""
        chat = self.chats[message.chat_id]
        result: dict[str, Any] = {
            "message_id": message.message_id,
            "date": message.date,
            "chat": chat.to_api(),
        }
        if chat.type != "channel":
            result["from"] = message.sender
        if message.edit_date is not None:
            result["edit_date"] = message.edit_date
        if message.text is not None:
            result["text"] = message.text
            if message.entities:
                result["entities"] = message.entities
        result.update(message.extra)
        if message.reply_markup:
            result["reply_markup"] = message.reply_markup
        if message.reply_to is not None and not nested:
            result["reply_to_message"] = self.message_to_api(message.reply_to, nested=True)
        return result

    def enqueue(self, payload: dict[str, Any]) -> UpdateRecord:
        """Queue an update for getUpdates; update_id is the next one unless the payload has it."""
        update_id = payload.get("update_id")
        if update_id is None:
            update_id = self._next_update_id
        elif int(update_id) < self._next_update_id:
            raise ValueError(
                f"update_id {update_id} is not above the last one ({self._next_update_id - 1})"
            )
        self._next_update_id = int(update_id) + 1
        payload = {"update_id": int(update_id), **payload}
        record = UpdateRecord(update_id=int(update_id), payload=payload, at=time.monotonic())
        self.updates.append(record)
        self.pending.append(record)
        self.bump()
        return record
