"""Users in inline mode: they type `@bot …` (an `inline_query`), pick one of the results (the
message "via @bot" appears in their chat, and a `chosen_inline_result` goes to the bot when
inline feedback is on), and press buttons under such messages (callback queries that carry an
`inline_message_id` and no message).

Used by the web chat page and the tests, like `users.py`.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from local_telegram.driver import Driver
from local_telegram.inline_state import InlineAnswer, InlineMessage, InlineQueryRecord
from local_telegram.records import CallbackQuery, ChatMessage
from local_telegram.users import SimulatedUsers, _pressed_data

MAX_QUERY = 256  # characters Telegram sends of an inline query


class InlineUsers(SimulatedUsers, Driver):
    """`send_inline_query`, `choose_inline_result`, `press_inline_button` and their waits."""

    def send_inline_query(
        self,
        user_id: int,
        query: str,
        *,
        chat_id: int | None = None,
        chat_type: str = "group",
        offset: str = "",
        use_cache: bool = True,
        first_name: str | None = None,
    ) -> str:
        """A user types `@bot <query>`; returns the inline query's id.

        chat_id: where it is typed: None is the user's own chat with the bot (chat_type
        "sender"), a negative id a group of `chat_type`. use_cache: like Telegram, answer from an
        answer still cached for this text (the bot then gets no update; the record says
        `cached`); False asks the bot regardless.
        """
        if len(query) > MAX_QUERY:
            raise ValueError(f"Telegram sends at most {MAX_QUERY} characters of an inline query")
        user = self._user(user_id, first_name)
        if chat_id is None:
            chat = self.ensure_chat(user_id, "private", first_name=user["first_name"])
            chat_type = "sender"
        else:
            chat = self.ensure_chat(chat_id, chat_type)
        inline = self.inline
        query_id = f"{self.bot_id}{inline.next_query:010d}"
        inline.next_query += 1
        record = InlineQueryRecord(
            id=query_id,
            user_id=user_id,
            query=query,
            chat_id=chat.id,
            chat_type=chat_type,
            at=time.monotonic(),
        )
        inline.queries[query_id] = record
        cached = inline.cached_answer(user_id, query) if use_cache else None
        if cached is not None:
            record.answer, record.cached = cached, True
            self.bump()
            return query_id
        payload = {"id": query_id, "from": user, "query": query, "offset": offset}
        payload["chat_type"] = chat_type
        record.update_id = self.enqueue({"inline_query": payload}).update_id
        return query_id

    def inline_query_record(self, query_id: str) -> InlineQueryRecord:
        record = self.inline.queries.get(query_id)
        if record is None:
            raise LookupError(f"no inline query {query_id}")
        return record

    def choose_inline_result(self, query_id: str, result_id: str) -> InlineMessage:
        """The user who typed the query picks a result: it is posted in the query's chat."""
        record = self.inline_query_record(query_id)
        answer = record.answer
        result = answer.result(result_id) if answer else None
        if answer is None or result is None:
            raise ValueError(f"inline query {query_id} has no result {result_id!r}")
        user = self._user(record.user_id)
        chat = self.find_chat(record.chat_id)
        content = result["input_message_content"]
        markup = result.get("reply_markup")
        message = self.new_message(
            chat,
            from_bot=False,
            sender=user,
            text=str(content["message_text"]).strip(),
            entities=list(content.get("entities") or []),
            reply_markup=markup,
            extra={"via_bot": dict(self.bot_user)},
        )
        inline_id = self._new_inline_message_id()
        posted = InlineMessage(inline_id, query_id, result_id, record.user_id, message)
        self.inline.messages[inline_id] = posted
        self.inline.by_chat_message[(chat.id, message.message_id)] = inline_id
        if chat.type == "private":  # the bot's own chat: it gets the message like any other
            message.update_id = self.enqueue({"message": self.message_to_api(message)}).update_id
        if self.inline.feedback:
            self._report_choice(record, answer, result_id, user, inline_id if markup else None)
        chat.mark = message.message_id
        chat.last_user_action_at = message.at
        return posted

    def _new_inline_message_id(self) -> str:
        number = self.inline.next_message
        self.inline.next_message += 1
        return f"AgAAA{number:06d}{secrets.token_urlsafe(9)}"  # opaque, as Telegram's are

    def _report_choice(
        self,
        record: InlineQueryRecord,
        answer: InlineAnswer,
        result_id: str,
        user: dict[str, Any],
        inline_id: str | None,
    ) -> None:
        """chosen_inline_result; Telegram names the message only when it has a keyboard."""
        chosen: dict[str, Any] = {"result_id": result_id, "from": user, "query": record.query}
        if inline_id is not None:
            chosen["inline_message_id"] = inline_id
        self.enqueue({"chosen_inline_result": chosen})

    def inline_message(self, inline_message_id: str) -> ChatMessage:
        posted = self.inline.messages.get(inline_message_id)
        if posted is None:
            raise LookupError(f"no inline message {inline_message_id}")
        return posted.message

    def press_inline_button(
        self,
        user_id: int,
        inline_message_id: str,
        callback_data: str | None = None,
        *,
        text: str | None = None,
        strict: bool = True,
        first_name: str | None = None,
    ) -> str:
        """A user presses a button under a message posted through inline mode (by its
        callback_data or text); returns the callback query's id.

        strict=False: forge a press (an unknown inline_message_id, data no button has).
        """
        posted = self.inline.messages.get(inline_message_id)
        if posted is None and strict:
            raise ValueError(f"no inline message {inline_message_id}")
        if posted is not None:
            data = _pressed_data(posted.message, callback_data, text, strict)
            chat_id, message_id = posted.message.chat_id, posted.message.message_id
        elif callback_data is None:
            raise ValueError("a forged press needs callback_data")
        else:
            data, chat_id, message_id = callback_data, 0, 0
        user = self._user(user_id, first_name)
        query_id = f"{self.bot_id}{self.next_query_id:08d}"
        self.next_query_id += 1
        now = time.monotonic()
        update = {
            "callback_query": {
                "id": query_id,
                "from": user,
                "inline_message_id": inline_message_id,
                "chat_instance": str(abs(chat_id) * 7919 + self.bot_id),
                "data": data,
            }
        }
        record = self.enqueue(update)
        self.callback_queries[query_id] = CallbackQuery(
            id=query_id,
            user_id=user_id,
            chat_id=chat_id,
            message_id=message_id,
            data=data,
            at=now,
            update_id=record.update_id,
            inline_message_id=inline_message_id,
        )
        chat = self.chats.get(chat_id)
        if chat is not None:
            chat.mark = chat.next_message_id - 1
            chat.last_user_action_at = now
        return query_id

    async def wait_for_inline_answer(self, query_id: str, timeout: float = 5.0) -> InlineAnswer:
        """The bot's answer to an inline query (or Telegram's cached one)."""
        record = self.inline_query_record(query_id)
        try:
            return await self.wait_until(lambda: record.answer, timeout, "an inline answer")
        except TimeoutError:
            raise TimeoutError(
                f"inline query {query_id} ({record.query!r}) was not answered within {timeout}s"
            ) from None
