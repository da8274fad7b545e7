"""`LocalBotApi`: a fake but faithful Telegram Bot API server on 127.0.0.1, and its remote control.

The bot talks to it through aiogram's ordinary HTTP client (`TelegramAPIServer.from_base(url)`),
so everything between the bot and Telegram is exercised for real. Tests, benchmarks, the web chat
page and the fault switches act on the same in-process state: they play the users
(`users.py`, inline mode in `inline_users.py`), then await what the bot did (`driver.py`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from local_telegram import webchat
from local_telegram.driver import Driver
from local_telegram.faults import Fault, FaultInjector
from local_telegram.inline_users import InlineUsers
from local_telegram.methods import resolve_method
from local_telegram.params import ApiError, Params, bad_request
from local_telegram.records import ApiCall
from local_telegram.users import SimulatedUsers

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "100000:local-try-out"
DEFAULT_BOT_USERNAME = "funny_tochka_bot"
DEFAULT_BOT_NAME = "Смешно и точка"
WEB_USER_ID = 424242  # the person at the web chat page
WEB_USER_NAME = "Гость"
MAX_REQUEST_BYTES = 8 * 1024 * 1024

_HTML_5XX = (
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


class LocalBotApi(InlineUsers, SimulatedUsers, Driver):
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

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
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
        self.bump()  # long polls answer [] right away
        await self.webhooks.close()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> LocalBotApi:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- HTTP ----------------------------------------------------------------------------------

    def _token_ok(self, token: str) -> bool:
        if token == self.token:
            return True
        if not self.accept_any_token:
            return False
        left, sep, right = token.partition(":")
        return left.isdigit() and bool(sep) and bool(right)

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        if not self._token_ok(request.match_info["token"]):
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        resolved = resolve_method(request.match_info["method"])
        if resolved is None:
            error = ApiError(404, "Not Found: method not found")
            return web.json_response(error.body(), status=404)
        name, handler = resolved
        try:
            params = await _read_params(request)
        except ApiError as error:
            return web.json_response(error.body(), status=error.status)
        fault = self.faults.take(name)
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.delay)
            fault = None
        if fault is not None and not fault.after:
            return self._inflict(request, name, params, fault)
        try:
            body: dict[str, Any] = {"ok": True, "result": await handler(self, params)}
            status = 200
        except ApiError as error:
            body, status = error.body(), error.status
        if fault is not None:  # the method ran; only its answer is lost
            return self._inflict(request, name, params, fault)
        self.calls.append(ApiCall(name, params.data, status, time.monotonic()))
        self.bump()
        return web.json_response(body, status=status)

    def _inflict(
        self, request: web.Request, name: str, params: Params, fault: Fault
    ) -> web.StreamResponse:
        status = {"drop": 0, "429": 429}.get(fault.kind, fault.status)
        self.calls.append(ApiCall(name, params.data, status, time.monotonic(), fault.kind))
        self.bump()
        return _fault_response(request, fault)


async def _read_params(request: web.Request) -> Params:
    """Parameters from the query string and a JSON, urlencoded or multipart body."""
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


def _fault_response(request: web.Request, fault: Fault) -> web.StreamResponse:
    """The answer a fault gives: Telegram's flood control, its 5xx, a proxy's page, or nothing."""
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
            text=_HTML_5XX.format(status=fault.status),
            status=fault.status,
            content_type="text/html",
        )
    # drop: close the connection without a word; the client sees a disconnect
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError
