"""The real bot in webhook mode against the local Bot API server, for the tests/test_webhook*.py.

As `python -m bot --webhook` runs it (`bot.webhook`): the bot's aiohttp server listens on a free
port, `create_app` builds the bot with a fake model (tests/fault_kit.py), setWebhook points the
local server at it, and the local server POSTs every update there.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from bot.app import create_app
from bot.webhook import SECRET_HEADER, WebhookServer
from tests.bot_harness import RunningBot
from tests.fault_kit import FAST_BACKOFF, FakeModel, fake_registry, fake_settings
from tests.local_api import LocalBotApi

SECRET = "test-webhook-secret_1"


@dataclass
class WebhookBot(RunningBot):
    server: WebhookServer

    @property
    def url(self) -> str:
        """Where the local server posts updates (the bot's own socket here)."""
        return self.server.url

    async def post(
        self, body: bytes | dict[str, Any] | list[Any], *, secret: str | None = SECRET, **kw: Any
    ) -> tuple[int, str]:
        """POST to the bot's webhook as Telegram (or an impostor) would; (status, body text)."""
        return await post(self.url, body, secret=secret, **kw)

    async def health(self) -> tuple[int, dict[str, Any]]:
        return await health(self.server)


def webhook_settings(api: LocalBotApi, db: Path, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "webhook_host": "127.0.0.1",
        "webhook_port": 0,
        "webhook_secret": SecretStr(SECRET),
    }
    values.update(overrides)
    return fake_settings(api, db, **values)


@contextlib.asynccontextmanager
async def running_webhook_bot(
    api: LocalBotApi, db: Path, model: FakeModel | None = None, **overrides: Any
) -> AsyncIterator[WebhookBot]:
    """Listen, build the bot, serve until the test is done; then stop and close as SIGTERM does."""
    settings = webhook_settings(api, db, **overrides)
    server = WebhookServer(settings)
    await server.listen()
    try:
        app = await create_app(settings, registry=fake_registry(model), backoff=FAST_BACKOFF)
        try:
            server.attach(app)
            task = asyncio.create_task(server.serve(handle_signals=False))
            await api.wait_until(lambda: api.webhooks.active, 10, "the bot to set its webhook")
            try:
                yield WebhookBot(api, app, task, db, server)
            finally:
                await app.stop()
                await asyncio.wait_for(task, timeout=10)
        finally:
            await app.close()
    finally:
        await server.close()


async def post(
    url: str,
    body: bytes | dict[str, Any] | list[Any],
    *,
    secret: str | None = SECRET,
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    sent = dict(headers or {})
    if secret is not None:
        sent[SECRET_HEADER] = secret
    async with aiohttp.ClientSession() as http:
        kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
        async with http.post(url, headers=sent, **kwargs) as response:
            return response.status, await response.text()


async def health(server: WebhookServer) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.local_url}/healthz") as response,
    ):
        return response.status, await response.json()


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
