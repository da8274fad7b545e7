"""Webhook mode end to end: the local Bot API server POSTs updates to the real bot (fake model).

A joke and a vote; an update Telegram sends twice (the answer came after its timeout) applied
once; /healthz while the models load, with the database gone, and when ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import event

from bot.webhook import SECRET_HEADER, WebhookServer, run_webhook
from local_telegram.webhooks import TIMED_OUT
from tests.fault_kit import FAST_BACKOFF, FakeModel, errors, fake_registry, idle, wait_for
from tests.local_api import LocalBotApi
from tests.webhook_kit import SECRET, free_port, health, running_webhook_bot, webhook_settings

USER = 701


async def test_a_joke_and_a_vote_arrive_by_webhook(api: LocalBotApi, tmp_path: Path) -> None:
    async with running_webhook_bot(api, tmp_path / "j.db") as env:
        [set_call] = api.calls_of("setWebhook")
        assert set_call.params["url"] == env.url and set_call.params["secret_token"] == SECRET
        api.send_text(USER, "Кот")
        joke = await api.wait_for_bot_message(USER, timeout=10)
        assert (joke.text or "").startswith("Кот")
        query = api.press_button(USER, joke.message_id, text="👍 0")
        assert (await api.wait_for_callback_answer(query, timeout=10)).text == "Спасибо!"
        await idle(env)
        assert env.rows("SELECT prompt, message_id FROM jokes") == [("Кот", joke.message_id)]
        assert env.rows("SELECT user_id, value FROM votes") == [(USER, 1)]
        assert "👍 1" in api.message(USER, joke.message_id).button_texts
        assert api.calls_of("getUpdates") == []  # nothing was polled
        deliveries = api.webhooks.deliveries
        assert len(deliveries) == 2 and all(d.error is None for d in deliveries)
        assert errors(env) == 0 and env.app.tracker.skipped == 0
        assert await env.health() == (200, {"status": "ok"})


@contextlib.asynccontextmanager
async def slow_proxy(delay_s: float) -> AsyncIterator[dict[str, Any]]:
    """A reverse proxy in front of the bot that holds the answer to the *first* delivery of each
    update for `delay_s`: Telegram's call times out although the bot got the update."""
    state: dict[str, Any] = {"target": None, "seen": set()}

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {SECRET_HEADER: request.headers.get(SECRET_HEADER, "")}
        async with aiohttp.ClientSession() as http:
            url = state["target"] + request.path
            async with http.post(url, data=body, headers=headers) as response:
                status, text = response.status, await response.text()
        update_id = (await request.json())["update_id"]
        if update_id not in state["seen"]:
            state["seen"].add(update_id)
            await asyncio.sleep(delay_s)
        return web.Response(status=status, text=text, content_type="application/json")

    app = web.Application()
    app.router.add_post("/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield state
    finally:
        await runner.cleanup()


async def test_an_update_sent_again_after_a_slow_answer_is_applied_once(
    api: LocalBotApi, tmp_path: Path
) -> None:
    api.webhooks.timeout_s, api.webhooks.retry_min_s = 0.5, 0.05
    async with (
        slow_proxy(delay_s=1.2) as proxy,
        running_webhook_bot(api, tmp_path / "j.db", webhook_url=proxy["url"]) as env,
    ):
        proxy["target"] = env.server.local_url
        word = api.send_text(USER, "Кот")
        joke = await api.wait_for_bot_message(USER, timeout=10)
        await idle(env)
        query = api.press_button(USER, joke.message_id, text="👍 0")
        await idle(env)
        press = api.callback_queries[query].update_id
        for update_id in (word.update_id, press):
            attempts = api.webhooks.attempts(update_id)
            assert [a.error for a in attempts] == [TIMED_OUT, None], attempts
        assert env.app.tracker.skipped == 2  # the second delivery of each
        assert len(api.bot_messages(USER)) == 1
        assert env.rows("SELECT COUNT(*) FROM jokes") == [(1,)]
        assert env.rows("SELECT user_id, value FROM votes") == [(USER, 1)]  # not toggled back
        assert len(api.calls_of("answerCallbackQuery")) == 1
        assert "👍 1" in api.message(USER, joke.message_id).button_texts


class SlowToLoad(FakeModel):
    """A model whose loading (warm-up) waits until the test lets it finish."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded = threading.Event()

    def warmup(self) -> None:
        self.loaded.wait(10)


async def test_healthz_says_503_until_the_models_are_loaded(
    api: LocalBotApi, tmp_path: Path
) -> None:
    model = SlowToLoad()
    servers: list[WebhookServer] = []
    port = free_port()
    settings = webhook_settings(api, tmp_path / "j.db", webhook_port=port)
    task = asyncio.create_task(
        run_webhook(
            settings,
            handle_signals=False,
            ready=servers.append,
            registry=fake_registry(model),
            backoff=FAST_BACKOFF,
        )
    )
    try:
        async with aiohttp.ClientSession() as http:
            await wait_for(lambda: _listening(port), 10, "the webhook server to listen")
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 503
                assert await response.json() == {
                    "status": "unavailable",
                    "reason": "starting: the models are loading",
                }
        api.send_text(USER, "Кот")  # no webhook yet: Telegram keeps it
        model.loaded.set()
        await wait_for(lambda: servers, 10, "the bot to start")
        await api.wait_until(lambda: api.webhooks.active, 10, "the webhook")
        assert await health(servers[0]) == (200, {"status": "ok"})
        reply = await api.wait_for_bot_message(USER, timeout=10)  # kept, then delivered
        assert (reply.text or "").startswith("Кот")
    finally:
        model.loaded.set()
        if servers and servers[0].app is not None:
            await servers[0].app.stop()
        await asyncio.wait_for(task, timeout=15)
    assert servers[0].stopping and await _health_refused(servers[0])


def _listening(port: int) -> bool:
    with contextlib.closing(socket.socket()) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def _health_refused(server: WebhookServer) -> bool:
    """After the stop nothing listens any more."""
    try:
        await health(server)
    except aiohttp.ClientConnectionError:
        return True
    return False


async def test_healthz_says_503_while_the_database_does_not_answer(
    api: LocalBotApi, tmp_path: Path
) -> None:
    async with running_webhook_bot(api, tmp_path / "j.db") as env:
        assert await env.health() == (200, {"status": "ok"})

        def refuse(*_: Any) -> None:
            raise sqlite3.OperationalError("unable to open database file")

        engine = env.app.engine
        event.listen(engine.sync_engine, "do_connect", refuse)
        await engine.dispose()  # pooled connections go; new ones cannot be opened
        try:
            status, body = await env.health()
            assert status == 503
            assert body == {
                "status": "unavailable",
                "reason": "the database does not answer (OperationalError)",
            }
        finally:
            event.remove(engine.sync_engine, "do_connect", refuse)
        assert await env.health() == (200, {"status": "ok"})
        await env.app.stop()  # stopping: unavailable at once
        await wait_for(lambda: env.server.stopping, 5, "the server to stop taking updates")
        assert await env.health() == (503, {"status": "unavailable", "reason": "shutting down"})
