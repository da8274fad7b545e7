"""The Bot API methods the bot uses, answered from in-memory state the way Telegram answers them.

Only what the bot needs is here, but each method checks what Telegram checks where that is cheap
(empty or too long text, 64-byte callback data, identical edits, stale callback queries), with
Telegram's own wording, so a bot that works here does not trip over those in production.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from local_telegram.formatting import Entity, ParseError, parse_text, strip_text
from local_telegram.records import (
    ApiCall,
    CallbackAnswer,
    CallbackQuery,
    Chat,
    ChatAction,
    ChatMessage,
    Edit,
    UpdateRecord,
)

MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
MAX_CALLBACK_ANSWER = 200
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Telegram sends these only to bots that ask for them in allowed_updates
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)


class ApiError(Exception):
    """A Telegram error answer: HTTP status, description, optional parameters."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(text: str) -> ApiError:
    return ApiError(400, f"Bad Request: {text}")


class Params:
    """A method's parameters as Telegram reads them: strings from forms, values from JSON."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = dict(data)

    def raw(self, name: str) -> Any:
        return self.data.get(name)

    def str(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        return value if isinstance(value, str) else str(value)

    def int(self, name: str, *, required: bool = False, what: str | None = None) -> int | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{what or name} is empty")
            return None
        if isinstance(value, bool):
            raise bad_request(f"wrong parameter {name} in request")
        try:
            return int(value)
        except (TypeError, ValueError):
            if name == "chat_id":
                raise bad_request("chat not found") from None
            raise bad_request(f"wrong parameter {name} in request") from None

    def float(self, name: str) -> float | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"wrong parameter {name} in request") from None

    def bool(self, name: str) -> bool:
        value = self.data.get(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    def json(self, name: str, error: str | None = None) -> Any:
        value = self.data.get(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(error or f"can't parse {name} JSON object") from None


Handler = Callable[[Params], Awaitable[Any]]


class BotApiCore:
    """In-memory Telegram: chats, messages, updates, callbacks, and the Bot API methods on them."""

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
        self.chats: dict[int, Chat] = {}
        self.updates: list[UpdateRecord] = []
        self._pending: deque[UpdateRecord] = deque()
        self._next_update_id = first_update_id
        self.callback_queries: dict[str, CallbackQuery] = {}
        self._next_query_id = 1
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.calls: deque[ApiCall] = deque(maxlen=100_000)
        self._allowed_updates: frozenset[str] | None = None
        self._poll_generation = 0
        self._waiting_polls = 0
        self._seq = 0
        self._changed = asyncio.Event()
        self.closing = False
        self._methods: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": self._get_updates,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "answerCallbackQuery": self._answer_callback_query,
                "sendChatAction": self._send_chat_action,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "close": self._true,
                "logOut": self._true,
            }.items()
        }

    # --- bookkeeping shared with the control API ----------------------------------------------

    def _bump(self) -> int:
        """Note a change: wake every waiter (long polls, test waiters, the web page)."""
        self._seq += 1
        self._changed.set()
        self._changed = asyncio.Event()
        return self._seq

    def resolve_method(self, name: str) -> tuple[str, Handler] | None:
        """(canonical name, handler) of a method; Telegram's method names ignore case."""
        return self._methods.get(name.lower())

    def _chat(self, chat_id: int) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def _chat_for_send(self, params: Params) -> Chat:
        raw = params.raw("chat_id")
        if raw is None or raw == "":
            raise bad_request("chat_id is empty")
        chat = self._chat(params.int("chat_id") or 0)
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _new_message(
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
        message.seq = self._bump()
        return message

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

    def _enqueue(self, payload: dict[str, Any]) -> UpdateRecord:
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
        self._pending.append(record)
        self._bump()
        return record

    def _confirm(self, offset: int) -> None:
        now = time.monotonic()
        if offset < 0:
            keep = -offset
            while len(self._pending) > keep:
                self._pending.popleft().confirmed_at = now
            return
        confirmed = False
        while self._pending and self._pending[0].update_id < offset:
            self._pending.popleft().confirmed_at = now
            confirmed = True
        if confirmed:
            self._bump()  # wake test waiters on "all updates answered"

    def _available(self, limit: int) -> list[UpdateRecord]:
        allowed = self._allowed_updates
        batch: list[UpdateRecord] = []
        for record in list(self._pending):
            kind = record.kind
            wanted = kind not in NOT_BY_DEFAULT if allowed is None else kind in allowed
            if not wanted:  # Telegram never queues what the bot did not ask for
                record.dropped = True
                self._pending.remove(record)
                continue
            batch.append(record)
            if len(batch) >= limit:
                break
        return batch

    # --- text, keyboards, replies --------------------------------------------------------------

    def _message_text(self, params: Params) -> tuple[str, list[Entity], str | None]:
        source = params.str("text")
        if not source:
            raise bad_request("message text is empty")
        parse_mode = params.str("parse_mode") or None
        entities = params.json("entities", "can't parse entities JSON object")
        if entities:
            text = source
            if not isinstance(entities, list):
                raise bad_request("can't parse entities JSON object")
        else:
            try:
                text, entities = parse_text(source, parse_mode)
            except ParseError as error:
                raise bad_request(f"can't parse entities: {error}") from None
        text, entities = strip_text(text, list(entities))
        if not text:
            raise bad_request("message text is empty")
        if len(text) > MAX_TEXT:
            raise bad_request("message is too long")
        return text, entities, parse_mode

    def _reply_markup(self, params: Params, *, inline_only: bool = False) -> dict[str, Any] | None:
        """The markup as given, after Telegram's checks; None when there is none."""
        markup = params.json("reply_markup", "can't parse reply keyboard markup JSON object")
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            self._check_inline_keyboard(markup["inline_keyboard"])
            return markup
        if inline_only:
            raise bad_request("inline keyboard expected")
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad_request('field "keyboard" of the ReplyKeyboardMarkup must be an Array')
            return markup
        if markup.get("remove_keyboard") or markup.get("force_reply"):
            return markup
        raise bad_request('can\'t find field "inline_keyboard"')

    @staticmethod
    def _check_inline_keyboard(rows: Any) -> None:
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        if sum(len(row) for row in rows) > 100:
            raise bad_request("reply markup is too long")
        for row in rows:
            for button in row:
                if not isinstance(button, dict):
                    raise bad_request(
                        "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
                    )
                if not isinstance(button.get("text"), str):
                    raise bad_request(
                        'can\'t parse inline keyboard button: Field "text" must be of type String'
                    )
                actions = [key for key in button if key != "text"]
                if not actions:
                    raise bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the "
                        "inline keyboard"
                    )
                if "callback_data" in button:
                    data = button["callback_data"]
                    size = len(str(data).encode("utf-8"))
                    if not isinstance(data, str) or not 1 <= size <= MAX_CALLBACK_DATA:
                        raise bad_request("BUTTON_DATA_INVALID")
                if "url" in button:
                    url = str(button["url"])
                    if not url.startswith(("http://", "https://", "tg://")):
                        raise bad_request(
                            f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL"
                        )

    def _apply_reply_keyboard(self, chat: Chat, markup: dict[str, Any] | None) -> None:
        if not markup:
            return
        if "keyboard" in markup:
            chat.reply_keyboard = markup
        elif markup.get("remove_keyboard"):
            chat.reply_keyboard = None

    def _reply_target(self, chat: Chat, params: Params) -> ChatMessage | None:
        reply = params.json("reply_parameters", "can't parse reply parameters JSON object")
        message_id: int | None = None
        allow_without = params.bool("allow_sending_without_reply")
        if isinstance(reply, dict) and reply.get("message_id") is not None:
            message_id = int(reply["message_id"])
            allow_without = allow_without or bool(reply.get("allow_sending_without_reply"))
        elif params.raw("reply_to_message_id") not in (None, ""):
            message_id = params.int("reply_to_message_id")
        if message_id is None:
            return None
        target = chat.messages.get(message_id)
        if target is None or target.deleted:
            if allow_without:
                return None
            raise bad_request("message to be replied not found")
        return target

    def _message_to_edit(self, params: Params) -> tuple[Chat, ChatMessage]:
        if params.raw("inline_message_id") not in (None, ""):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._chat_for_send(params)
        message_id = params.int("message_id", required=True, what="message identifier")
        message = chat.messages.get(message_id or 0)
        if message is None or message.deleted:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return chat, message

    def _record_edit(self, message: ChatMessage) -> None:
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
        message.seq = self._bump()

    # --- the methods ---------------------------------------------------------------------------

    async def _true(self, params: Params) -> bool:
        return True

    async def _get_me(self, params: Params) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: Params) -> list[dict[str, Any]]:
        offset = params.int("offset")
        limit = min(max(params.int("limit") or 100, 1), 100)
        timeout = max(params.float("timeout") or 0.0, 0.0)
        allowed = params.json("allowed_updates", "can't parse allowed_updates JSON object")
        if allowed is not None:
            if not isinstance(allowed, list):
                raise bad_request("can't parse allowed_updates JSON object")
            self._allowed_updates = frozenset(map(str, allowed)) or None
        if offset:
            self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        if self._waiting_polls:
            self._bump()  # Telegram ends the older request with 409 Conflict
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            batch = self._available(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self.closing:
                break
            changed = self._changed
            self._waiting_polls += 1
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                pass
            finally:
                self._waiting_polls -= 1
            if generation != self._poll_generation:
                raise ApiError(409, CONFLICT)
        now = time.monotonic()
        for record in batch:
            if record.delivered_at is None:
                record.delivered_at = now
        if batch:
            self._bump()
        return [record.payload for record in batch]

    async def _send_message(self, params: Params) -> dict[str, Any]:
        chat = self._chat_for_send(params)
        text, entities, parse_mode = self._message_text(params)
        markup = self._reply_markup(params)
        reply_to = self._reply_target(chat, params)
        self._apply_reply_keyboard(chat, markup)
        inline = markup if markup and "inline_keyboard" in markup else None
        message = self._new_message(
            chat,
            from_bot=True,
            sender=self.bot_user,
            text=text,
            entities=entities,
            reply_markup=inline,
            reply_to=reply_to,
            parse_mode=parse_mode,
            source_text=params.str("text"),
        )
        return self.message_to_api(message)

    async def _edit_message_text(self, params: Params) -> dict[str, Any]:
        _, message = self._message_to_edit(params)
        text, entities, parse_mode = self._message_text(params)
        markup = self._reply_markup(params, inline_only=True)
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        if text == message.text and entities == message.entities and markup == message.reply_markup:
            raise bad_request(NOT_MODIFIED)
        message.text, message.entities, message.reply_markup = text, entities, markup
        message.parse_mode, message.source_text = parse_mode, params.str("text")
        self._record_edit(message)
        return self.message_to_api(message)

    async def _edit_message_reply_markup(self, params: Params) -> dict[str, Any]:
        _, message = self._message_to_edit(params)
        markup = self._reply_markup(params, inline_only=True)
        if markup == message.reply_markup:
            raise bad_request(NOT_MODIFIED)
        message.reply_markup = markup
        self._record_edit(message)
        return self.message_to_api(message)

    async def _delete_message(self, params: Params) -> bool:
        chat = self._chat_for_send(params)
        message_id = params.int("message_id", required=True, what="message identifier")
        message = chat.messages.get(message_id or 0)
        if message is None or message.deleted:
            raise bad_request("message to delete not found")
        message.deleted = True
        message.seq = self._bump()
        return True

    async def _answer_callback_query(self, params: Params) -> bool:
        query_id = params.str("callback_query_id")
        text = params.str("text")
        if text and len(text) > MAX_CALLBACK_ANSWER:
            raise bad_request("MESSAGE_TOO_LONG")
        query = self.callback_queries.get(query_id or "")
        if (
            query is None
            or query.answer is not None
            or time.monotonic() - query.at > self.callback_timeout_s
        ):
            raise bad_request(QUERY_TOO_OLD)
        query.answer = CallbackAnswer(
            callback_query_id=query.id,
            text=text or None,
            show_alert=params.bool("show_alert"),
            url=params.str("url"),
            cache_time=params.int("cache_time") or 0,
            at=time.monotonic(),
            seq=self._seq + 1,
        )
        self._bump()
        return True

    async def _send_chat_action(self, params: Params) -> bool:
        chat = self._chat_for_send(params)
        action = params.str("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        chat.actions.append(ChatAction(action=action, at=time.monotonic(), seq=self._seq + 1))
        self._bump()
        return True

    @staticmethod
    def _commands_key(params: Params) -> str:
        scope = params.json("scope", "can't parse BotCommandScope JSON object") or {
            "type": "default"
        }
        if not isinstance(scope, dict):
            raise bad_request("can't parse BotCommandScope JSON object")
        language = params.str("language_code") or ""
        return json.dumps([scope, language], sort_keys=True, ensure_ascii=False)

    async def _set_my_commands(self, params: Params) -> bool:
        commands = params.json("commands", "can't parse commands JSON object")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("too many commands specified")
        cleaned = []
        for item in commands:
            if not isinstance(item, dict):
                raise bad_request("can't parse BotCommand JSON object")
            command = str(item.get("command", "")).removeprefix("/")
            description = str(item.get("description", "")).strip()
            if not (1 <= len(command) <= 32) or not all(
                c.isascii() and (c.isalnum() or c == "_") for c in command
            ):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": command.lower(), "description": description})
        self.commands[self._commands_key(params)] = cleaned
        self._bump()
        return True

    async def _get_my_commands(self, params: Params) -> list[dict[str, Any]]:
        return list(self.commands.get(self._commands_key(params), []))

    async def _delete_my_commands(self, params: Params) -> bool:
        self.commands.pop(self._commands_key(params), None)
        self._bump()
        return True

    async def _delete_webhook(self, params: Params) -> bool:
        if params.bool("drop_pending_updates"):
            while self._pending:
                record = self._pending.popleft()
                record.dropped = True
            self._bump()
        return True

    async def _get_webhook_info(self, params: Params) -> dict[str, Any]:
        return {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
