"""The people talking to the bot: they write, press buttons, and the bot gets updates about it.

Used by the web chat page (one person at a browser), by the benchmarks and by the tests, which
play many users and group chats at once.
"""

from __future__ import annotations

import time
from typing import Any

from local_telegram.entities import Entity, auto_entities
from local_telegram.records import CallbackQuery, Chat, ChatMessage
from local_telegram.state import TelegramState


class SimulatedUsers(TelegramState):
    """What users do: `send_text`, `send_message` (any message) and `press_button`."""

    def _user(
        self,
        user_id: int,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
    ) -> dict[str, Any]:
        """The Telegram User object of a user, created on first use; the names given stick."""
        user = self.users.setdefault(
            user_id, {"id": user_id, "is_bot": False, "first_name": f"Тестер {user_id}"}
        )
        if first_name is not None:
            user["first_name"] = first_name
        if username is not None:
            user["username"] = username
        if language_code is not None:
            user["language_code"] = language_code
        return dict(user)

    def ensure_chat(
        self,
        chat_id: int,
        chat_type: str = "private",
        *,
        title: str | None = None,
        first_name: str | None = None,
        username: str | None = None,
    ) -> Chat:
        """The chat with this id, created if new (a user who has started the bot, a group)."""
        chat = self.chats.get(chat_id)
        if chat is None:
            if chat_type == "private" and chat_id <= 0:
                raise ValueError("a private chat's id is the user's id, a positive number")
            if chat_type in ("group", "supergroup", "channel") and chat_id >= 0:
                raise ValueError(f"a {chat_type}'s id is negative")
            chat = Chat(id=chat_id, type=chat_type)
            self.chats[chat_id] = chat
        if title is not None:
            chat.title = title
        if first_name is not None:
            chat.first_name = first_name
        if username is not None:
            chat.username = username
        return chat

    def _user_chat(
        self, user: dict[str, Any], chat_id: int | None, chat_type: str, title: str | None
    ) -> Chat:
        if chat_type == "private":
            if chat_id not in (None, user["id"]):
                raise ValueError("a private chat's id is the user's id")
            chat = self.ensure_chat(user["id"], "private", first_name=user["first_name"])
            if user.get("username"):
                chat.username = user["username"]
            return chat
        if chat_id is None:
            raise ValueError(f"a {chat_type} chat needs chat_id (a negative number)")
        return self.ensure_chat(chat_id, chat_type, title=title)

    def send_message(
        self,
        user_id: int,
        text: str | None = None,
        *,
        entities: list[Entity] | None = None,
        chat_id: int | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
        reply_to: int | None = None,
        **fields: Any,
    ) -> ChatMessage:
        """A user sends a message: `text` (to the bot, or in a group when chat_id < 0 and
        chat_type='group'), or any other (e.g. sticker={...}, new_chat_members=[...]).

        Returns the user's message; `.update_id` and `.message_id` identify it. `fields` become
        fields of the Telegram Message as given; `entities` default to the commands, @mentions,
        hashtags and links Telegram would find in `text`.
        """
        user = self._user(user_id, first_name, username, language_code)
        chat = self._user_chat(user, chat_id, chat_type, chat_title)
        if text is not None and entities is None:
            entities = auto_entities(text)
        target = chat.messages.get(reply_to) if reply_to is not None else None
        if reply_to is not None and target is None:
            raise ValueError(f"no message {reply_to} in chat {chat.id} to reply to")
        message = self.new_message(
            chat,
            from_bot=False,
            sender=user,
            text=text,
            entities=entities or [],
            extra=fields,
            reply_to=target,
        )
        record = self.enqueue({"message": self.message_to_api(message)})
        message.update_id = record.update_id
        chat.mark = message.message_id
        chat.last_user_action_at = message.at
        return message

    #: the common case, a user writing text: `send_text(user, "Кот")`, or in a group
    #: `send_text(user, "/joke Кот", chat_id=-100, chat_type="group")`
    send_text = send_message

    def press_button(
        self,
        user_id: int,
        message_id: int,
        callback_data: str | None = None,
        *,
        text: str | None = None,
        chat_id: int | None = None,
        strict: bool = True,
        first_name: str | None = None,
        username: str | None = None,
    ) -> str:
        """A user presses an inline button (by its callback_data or its text); returns the query id.

        strict: the button must be on the message now (set False to forge stale or fake data).
        """
        chat = self.find_chat(user_id if chat_id is None else chat_id)
        message = chat.messages.get(message_id)
        if message is None or message.deleted:
            raise ValueError(f"no message {message_id} in chat {chat.id}")
        data = _pressed_data(message, callback_data, text, strict)
        user = self._user(user_id, first_name, username)
        query_id = f"{self.bot_id}{self.next_query_id:08d}"
        self.next_query_id += 1
        now = time.monotonic()
        update = {
            "callback_query": {
                "id": query_id,
                "from": user,
                "message": self.message_to_api(message),
                "chat_instance": str(abs(chat.id) * 7919 + self.bot_id),
                "data": data,
            }
        }
        record = self.enqueue(update)
        self.callback_queries[query_id] = CallbackQuery(
            id=query_id,
            user_id=user_id,
            chat_id=chat.id,
            message_id=message_id,
            data=data,
            at=now,
            update_id=record.update_id,
        )
        chat.mark = chat.next_message_id - 1
        chat.last_user_action_at = now
        return query_id


def _pressed_data(
    message: ChatMessage, callback_data: str | None, text: str | None, strict: bool
) -> str:
    """The callback_data a press sends: given, or found by the button's text."""
    if callback_data is None:
        if text is None:
            raise ValueError("press_button needs callback_data or text")
        button = message.button(text)
        if "callback_data" not in button:
            raise ValueError(f"button {text!r} has no callback_data: {button}")
        return str(button["callback_data"])
    if strict and callback_data not in message.callback_data:
        raise ValueError(
            f"message {message.message_id} in chat {message.chat_id} has no button with "
            f"callback_data {callback_data!r}; it has {message.callback_data}"
        )
    return callback_data
