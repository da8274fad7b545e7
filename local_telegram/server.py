"""`LocalBotApi`: a fake but faithful Telegram Bot API server on 127.0.0.1, and its remote control.

The bot talks to it through aiogram's ordinary HTTP client (`TelegramAPIServer.from_base(url)`),
so everything between the bot and Telegram is exercised for real. Tests, the web chat page and
the fault switches act on the same in-process state: a test plays the user with `send_text` /
`press_button`, then awaits what the bot did with `wait_for_bot_message` / `wait_for_edit` /
`wait_for_callback_answer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from local_telegram.faults import Fault, FaultInjector
from local_telegram.formatting import Entity, auto_entities
from local_telegram.methods import ApiError, BotApiCore, Params, bad_request
from local_telegram.records import (
    ApiCall,
    CallbackAnswer,
    CallbackQuery,
    Chat,
    ChatAction,
    ChatMessage,
    Edit,
)

if TYPE_CHECKING:
    from aiogram import Bot

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "100000:local-try-out"
DEFAULT_BOT_USERNAME = "funny_tochka_bot"
DEFAULT_BOT_NAME = "Смешно и точка"
WEB_USER_ID = 424242  # the person at the web chat page
WEB_USER_NAME = "Гость"

T = TypeVar("T")

_HTML_502 = (
    "<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>{status} Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_STATUS_TEXT = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class LocalBotApi(BotApiCore):
    """A Bot API server in this process, started with `await api.start()` (or `async with`).

    token: the one token accepted (others get 401 like Telegram); its number is the bot's id.
    accept_any_token: also accept any well-formed token (the bot keeps this server's identity).
    port: 0 picks a free port; `url` tells which after start().
    callback_timeout_s: how long a callback query can still be answered.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = DEFAULT_BOT_USERNAME,
        bot_first_name: str = DEFAULT_BOT_NAME,
        accept_any_token: bool = False,
        callback_timeout_s: float = 15.0,
        web_user_id: int = WEB_USER_ID,
        web_user_name: str = WEB_USER_NAME,
        first_update_id: int = 1,
    ) -> None:
        super().__init__(
            token=token,
            bot_username=bot_username,
            bot_first_name=bot_first_name,
            callback_timeout_s=callback_timeout_s,
            first_update_id=first_update_id,
        )
        self.host = host
        self.port = port
        self.accept_any_token = accept_any_token
        self.web_user_id = web_user_id
        self.web_user_name = web_user_name
        self.faults = FaultInjector()
        self._runner: web.AppRunner | None = None
        self._users: dict[int, dict[str, Any]] = {}

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL for `TelegramAPIServer.from_base(url)`; also the web chat page (`url + '/'`)."""
        if self._runner is None:
            raise RuntimeError("LocalBotApi is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def page_url(self) -> str:
        return f"{self.url}/"

    @property
    def bot_username(self) -> str:
        return str(self.bot_user["username"])

    def make_app(self) -> web.Application:
        from local_telegram import webchat

        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        webchat.add_routes(app, self)
        return app

    async def start(self) -> None:
        if self._runner is not None:
            return
        self.closing = False
        # handler_cancellation: a long poll whose client went away stops waiting at once
        runner = web.AppRunner(
            self.make_app(),
            handle_signals=False,
            handler_cancellation=True,
            shutdown_timeout=1.0,
            access_log=None,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self.port = int(runner.addresses[0][1])
        self._runner = runner
        log.info("local Bot API server on %s", self.url)

    async def stop(self) -> None:
        if self._runner is None:
            return
        self.closing = True
        self._bump()  # long polls answer [] right away
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> LocalBotApi:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def make_bot(self, **kwargs: Any) -> Bot:
        """An aiogram Bot wired to this server (the caller closes `bot.session`)."""
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        session = AiohttpSession(api=TelegramAPIServer.from_base(self.url))
        return Bot(token=self.token, session=session, **kwargs)

    # --- HTTP ----------------------------------------------------------------------------------

    def _token_ok(self, token: str) -> bool:
        if token == self.token:
            return True
        if not self.accept_any_token:
            return False
        left, sep, right = token.partition(":")
        return left.isdigit() and bool(sep) and bool(right)

    async def _read_params(self, request: web.Request) -> Params:
        data: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise bad_request("can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise bad_request("can't parse JSON object")
                data.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                data.update(form.items())
        return Params(data)

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        if not self._token_ok(request.match_info["token"]):
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        resolved = self.resolve_method(request.match_info["method"])
        if resolved is None:
            error = ApiError(404, "Not Found: method not found")
            return web.json_response(error.body(), status=404)
        name, handler = resolved
        try:
            params = await self._read_params(request)
        except ApiError as error:
            return web.json_response(error.body(), status=error.status)
        fault = self.faults.take(name)
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.delay)
            fault = None
        if fault is not None and not fault.after:
            return await self._inflict(request, name, params, fault)
        try:
            body: dict[str, Any] = {"ok": True, "result": await handler(params)}
            status = 200
        except ApiError as error:
            body, status = error.body(), error.status
        if fault is not None:
            return await self._inflict(request, name, params, fault)
        self.calls.append(ApiCall(name, params.data, status, time.monotonic()))
        self._bump()
        return web.json_response(body, status=status)

    async def _inflict(
        self, request: web.Request, name: str, params: Params, fault: Fault
    ) -> web.StreamResponse:
        status = {"drop": 0, "429": 429}.get(fault.kind, fault.status)
        self.calls.append(ApiCall(name, params.data, status, time.monotonic(), fault.kind))
        self._bump()
        if fault.kind == "429":
            error = ApiError(
                429,
                f"Too Many Requests: retry after {fault.retry_after}",
                {"retry_after": fault.retry_after},
            )
            return web.json_response(error.body(), status=429)
        if fault.kind == "5xx":
            text = _STATUS_TEXT.get(fault.status, "Internal Server Error")
            return web.json_response(ApiError(fault.status, text).body(), status=fault.status)
        if fault.kind == "html5xx":
            return web.Response(
                text=_HTML_502.format(status=fault.status),
                status=fault.status,
                content_type="text/html",
            )
        # drop: close the connection without a word; the client sees a disconnect
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError

    # --- playing the users ---------------------------------------------------------------------

    def _user(
        self,
        user_id: int,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
    ) -> dict[str, Any]:
        user = self._users.setdefault(
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

    def block_user(self, user_id: int, blocked: bool = True) -> None:
        """The user blocks (or unblocks) the bot: sends to them get 403 Forbidden."""
        self.ensure_chat(user_id).blocked = blocked

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
        *,
        text: str | None = None,
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
        """A user sends any message (text, or e.g. sticker={...}, new_chat_members=[...]).

        `fields` become fields of the Telegram Message as given; `entities` default to the
        commands, @mentions, hashtags and links Telegram would find in `text`.
        """
        user = self._user(user_id, first_name, username, language_code)
        chat = self._user_chat(user, chat_id, chat_type, chat_title)
        if text is not None and entities is None:
            entities = auto_entities(text)
        target = chat.messages.get(reply_to) if reply_to is not None else None
        if reply_to is not None and target is None:
            raise ValueError(f"no message {reply_to} in chat {chat.id} to reply to")
        message = self._new_message(
            chat,
            from_bot=False,
            sender=user,
            text=text,
            entities=entities or [],
            extra=fields,
            reply_to=target,
        )
        record = self._enqueue({"message": self.message_to_api(message)})
        message.update_id = record.update_id
        chat.mark = message.message_id
        chat.last_user_action_at = message.at
        return message

    def send_text(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
        entities: list[Entity] | None = None,
        reply_to: int | None = None,
    ) -> ChatMessage:
        """A user writes `text` (to the bot, or in a group when chat_id < 0 and chat_type='group').

        Returns the user's message; `.update_id` and `.message_id` identify it.
        """
        return self.send_message(
            user_id,
            text=text,
            entities=entities,
            chat_id=chat_id,
            chat_type=chat_type,
            chat_title=chat_title,
            first_name=first_name,
            username=username,
            language_code=language_code,
            reply_to=reply_to,
        )

    def edit_user_message(self, chat_id: int, message_id: int, text: str) -> ChatMessage:
        """A user edits their message: an `edited_message` update."""
        message = self.message(chat_id, message_id)
        if message.from_bot:
            raise ValueError("edit_user_message edits users' messages; the bot edits its own")
        message.text, message.entities = text, auto_entities(text)
        self._record_edit(message)
        record = self._enqueue({"edited_message": self.message_to_api(message)})
        message.update_id = record.update_id
        return message

    def send_update(self, update: dict[str, Any]) -> int:
        """Queue any raw update (a dict as Telegram sends it); returns its update_id.

        update_id is assigned when missing. A "message" or "channel_post" with a "chat" is also
        recorded in that chat, getting message_id and date when they are missing.
        """
        payload = dict(update)
        for key in ("message", "channel_post"):
            body = payload.get(key)
            if isinstance(body, dict) and isinstance(body.get("chat"), dict):
                raw_chat = body["chat"]
                chat = self.ensure_chat(
                    int(raw_chat["id"]),
                    str(raw_chat.get("type", "private")),
                    title=raw_chat.get("title"),
                    first_name=raw_chat.get("first_name"),
                )
                sender = body.get("from") or {"id": chat.id, "is_bot": False, "first_name": "?"}
                fields = {
                    k: v
                    for k, v in body.items()
                    if k not in ("message_id", "date", "chat", "from", "text", "entities")
                }
                message = self._new_message(
                    chat,
                    from_bot=False,
                    sender=sender,
                    text=body.get("text"),
                    entities=list(body.get("entities") or []),
                    extra=fields,
                )
                if "message_id" in body:  # keep the caller's id; later ones count on from it
                    del chat.messages[message.message_id]
                    message.message_id = int(body["message_id"])
                    chat.messages[message.message_id] = message
                    chat.next_message_id = max(chat.next_message_id, message.message_id + 1)
                if "date" in body:
                    message.date = int(body["date"])
                payload[key] = {**self.message_to_api(message), **body}
                record = self._enqueue(payload)
                message.update_id = record.update_id
                chat.mark = max(chat.mark, message.message_id)
                chat.last_user_action_at = message.at
                return record.update_id
        return self._enqueue(payload).update_id

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
        chat = self._chat(user_id if chat_id is None else chat_id)
        message = chat.messages.get(message_id)
        if message is None or message.deleted:
            raise ValueError(f"no message {message_id} in chat {chat.id}")
        if callback_data is None:
            if text is None:
                raise ValueError("press_button needs callback_data or text")
            button = message.button(text)
            if "callback_data" not in button:
                raise ValueError(f"button {text!r} has no callback_data: {button}")
            callback_data = str(button["callback_data"])
        elif strict and callback_data not in message.callback_data:
            raise ValueError(
                f"message {message_id} in chat {chat.id} has no button with callback_data "
                f"{callback_data!r}; it has {message.callback_data}"
            )
        user = self._user(user_id, first_name, username)
        query_id = f"{self.bot_id}{self._next_query_id:08d}"
        self._next_query_id += 1
        now = time.monotonic()
        update = {
            "callback_query": {
                "id": query_id,
                "from": user,
                "message": self.message_to_api(message),
                "chat_instance": str(abs(chat.id) * 7919 + self.bot_id),
                "data": callback_data,
            }
        }
        record = self._enqueue(update)
        self.callback_queries[query_id] = CallbackQuery(
            id=query_id,
            user_id=user_id,
            chat_id=chat.id,
            message_id=message_id,
            data=callback_data,
            at=now,
            update_id=record.update_id,
        )
        chat.mark = chat.next_message_id - 1
        chat.last_user_action_at = now
        return query_id

    # --- what happened -------------------------------------------------------------------------

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

    def user_messages(self, chat_id: int) -> list[ChatMessage]:
        return [m for m in self.messages(chat_id) if not m.from_bot]

    def last_bot_message(self, chat_id: int) -> ChatMessage | None:
        found = self.bot_messages(chat_id)
        return found[-1] if found else None

    def message(self, chat_id: int, message_id: int) -> ChatMessage:
        message = self.chat(chat_id).messages.get(message_id)
        if message is None:
            raise LookupError(f"no message {message_id} in chat {chat_id}")
        return message

    def chat_actions(self, chat_id: int) -> list[ChatAction]:
        chat = self.chats.get(chat_id)
        return list(chat.actions) if chat else []

    def callback_answer(self, callback_query_id: str) -> CallbackAnswer | None:
        query = self.callback_queries.get(callback_query_id)
        return query.answer if query else None

    def my_commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        """Commands the bot set with setMyCommands for a scope (default scope by default)."""
        import json

        key = json.dumps(
            [scope or {"type": "default"}, language_code], sort_keys=True, ensure_ascii=False
        )
        return list(self.commands.get(key, []))

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates the bot has not confirmed yet (delivered or not), oldest first."""
        return [record.payload for record in self._pending]

    @property
    def all_updates_answered(self) -> bool:
        """True when the bot has fetched and confirmed (by a higher offset) every update."""
        return not self._pending

    def calls_of(self, method: str) -> list[ApiCall]:
        key = method.lower()
        return [call for call in self.calls if call.method.lower() == key]

    def reply_keyboard(self, chat_id: int) -> dict[str, Any] | None:
        chat = self.chats.get(chat_id)
        return chat.reply_keyboard if chat else None

    # --- waiting for the bot -------------------------------------------------------------------

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
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def _describe(self, chat_id: int) -> str:
        lines = [
            f"  #{m.message_id} {'bot' if m.from_bot else 'user'}: {m.text!r}"
            + (f" buttons={m.button_texts}" if m.buttons else "")
            for m in self.messages(chat_id)[-8:]
        ]
        return "\n".join(lines) or "  (no messages)"

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

        try:
            return await self.wait_until(found, timeout, "bot messages")
        except TimeoutError:
            raise TimeoutError(
                f"no {count} bot message(s) after #{floor} in chat {chat_id} within {timeout}s; "
                f"the chat ends with:\n{self._describe(chat_id)}"
            ) from None

    async def wait_for_bot_message(
        self, chat_id: int, *, after: int | None = None, timeout: float = 5.0
    ) -> ChatMessage:
        """The first bot message with message_id > `after` (see `wait_for_bot_messages`)."""
        return (await self.wait_for_bot_messages(chat_id, 1, after=after, timeout=timeout))[0]

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

        try:
            return await self.wait_until(found, timeout, "an edit")
        except TimeoutError:
            raise TimeoutError(
                f"message #{message_id} in chat {chat_id} was not edited within {timeout}s; "
                f"the chat ends with:\n{self._describe(chat_id)}"
            ) from None

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

    async def wait_all_updates_answered(self, timeout: float = 5.0) -> None:
        """Await until the bot has fetched and confirmed every queued update."""
        await self.wait_until(
            lambda: self.all_updates_answered,
            timeout,
            f"the bot to confirm updates {[r.update_id for r in self._pending]}",
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
