"""The local Bot API server's webhooks, seen from a plain aiohttp receiver (no bot): setWebhook,
delivery with the secret header, order per chat, redelivery with backoff, 409 for getUpdates."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramConflictError
from aiohttp import web

from local_telegram.webhooks import SECRET_HEADER, TIMED_OUT
from tests.local_api import LocalBotApi

SECRET = "s3cret_token-1"


@dataclass
class Receiver:
    """A webhook endpoint that records what it gets and answers with `status(update)`."""

    url: str = ""
    got: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    status: Callable[[dict[str, Any]], int] = lambda update: 200
    delay_s: float = 0.0

    @property
    def update_ids(self) -> list[int]:
        return [update["update_id"] for update, _ in self.got]

    async def handle(self, request: web.Request) -> web.Response:
        update = await request.json()
        self.got.append((update, request.headers.get(SECRET_HEADER)))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.json_response({}, status=self.status(update))


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving(Receiver()) as running:
        yield running


async def test_updates_go_to_the_webhook_with_the_secret_and_getupdates_conflicts(
    api: LocalBotApi, bot: Bot, receiver: Receiver
) -> None:
    api.send_text(1, "до вебхука")  # queued before: delivered once the webhook is set
    assert await bot.set_webhook(receiver.url, secret_token=SECRET, max_connections=5)
    api.send_text(1, "после")
    await api.wait_all_updates_answered()
    assert [u["message"]["text"] for u, _ in receiver.got] == ["до вебхука", "после"]
    assert {secret for _, secret in receiver.got} == {SECRET}
    info = await bot.get_webhook_info()
    assert info.url == receiver.url and info.pending_update_count == 0
    assert info.max_connections == 5 and info.last_error_message is None
    with pytest.raises(TelegramConflictError, match="can't use getUpdates method while webhook"):
        await bot.get_updates(timeout=0)
    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""
    api.send_text(1, "снова опрос")
    assert [u.message.text for u in await bot.get_updates(timeout=0)] == ["снова опрос"]
    assert len(receiver.got) == 2


async def test_a_failing_webhook_gets_the_update_again_with_growing_pauses(
    api: LocalBotApi, bot: Bot, receiver: Receiver
) -> None:
    api.webhooks.retry_min_s, api.webhooks.retry_max_s = 0.05, 0.2
    failures = 3
    receiver.status = lambda update: 500 if len(receiver.got) <= failures else 200
    await bot.set_webhook(receiver.url)
    update_id = api.send_text(7, "кот").update_id
    await api.wait_all_updates_answered(timeout=5)
    attempts = api.webhooks.attempts(update_id)
    assert [a.status for a in attempts] == [500, 500, 500, 200]
    pauses = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert pauses[0] >= 0.04 and pauses[1] >= 0.09 and pauses[2] >= 0.18  # 0.05, 0.1, 0.2
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 0
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    assert info.last_error_date is not None
    assert receiver.update_ids == [update_id] * 4


async def test_a_slow_answer_is_a_timeout_and_the_update_comes_again(
    api: LocalBotApi, bot: Bot, receiver: Receiver
) -> None:
    api.webhooks.timeout_s, api.webhooks.retry_min_s = 0.2, 0.05
    receiver.delay_s = 0.5
    await bot.set_webhook(receiver.url)
    update_id = api.send_text(7, "кот").update_id
    await api.wait_until(lambda: len(receiver.got) >= 2, 5, "a second delivery")
    assert receiver.update_ids[:2] == [update_id, update_id]
    assert (await bot.get_webhook_info()).last_error_message == TIMED_OUT
    assert (await bot.get_webhook_info()).pending_update_count == 1
    receiver.delay_s = 0.0
    await api.wait_all_updates_answered(timeout=5)


async def test_one_update_at_a_time_per_chat_in_order_chats_in_parallel(
    api: LocalBotApi, bot: Bot, receiver: Receiver
) -> None:
    api.webhooks.retry_min_s = 0.05
    receiver.delay_s = 0.2
    fail_once = {api.send_text(1, "a1").update_id}  # queued first; delivered after set
    receiver.status = lambda u: 500 if u["update_id"] in fail_once and fail_once.pop() else 200
    for n in range(2, 4):
        api.send_text(1, f"a{n}")
    for n in range(1, 4):
        api.send_text(2, f"b{n}")
    await bot.set_webhook(receiver.url)
    await api.wait_all_updates_answered(timeout=10)
    texts = [u["message"]["text"] for u, _ in receiver.got]
    assert [t for t in texts if t.startswith("a")] == ["a1", "a1", "a2", "a3"]  # a1 failed once
    assert [t for t in texts if t.startswith("b")] == ["b1", "b2", "b3"]
    assert texts.index("b1") < texts.index("a2")  # chat 2 did not wait for chat 1's retry


async def test_refused_connections_are_reported_and_drop_pending_updates_clears_them(
    api: LocalBotApi, bot: Bot
) -> None:
    api.webhooks.retry_min_s = 0.05
    async with receiving(Receiver()) as gone:
        url = gone.url
    await bot.set_webhook(url)  # nobody listens there any more
    api.send_text(3, "кот")
    await api.wait_until(lambda: api.webhooks.last_error_message, 5, "a delivery error")
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Connection refused" and info.pending_update_count == 1
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert api.all_updates_answered and (await bot.get_webhook_info()).pending_update_count == 0


async def test_lost_answers_make_the_same_update_arrive_twice(
    api: LocalBotApi, bot: Bot, receiver: Receiver
) -> None:
    api.webhooks.retry_min_s = 0.05
    api.webhooks.fail_next(1)
    await bot.set_webhook(receiver.url)
    update_id = api.send_text(4, "кот").update_id
    await api.wait_all_updates_answered(timeout=5)
    assert receiver.update_ids == [update_id, update_id]
    assert [a.error for a in api.webhooks.attempts(update_id)] == [TIMED_OUT, None]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"url": "ftp://example.com/hook"}, "An HTTP(S) URL must be provided"),
        ({"url": "http://127.0.0.1:1/hook", "secret_token": "has space"}, "unallowed characters"),
        ({"url": "http://127.0.0.1:1/hook", "secret_token": "x" * 257}, "unallowed characters"),
    ],
)
async def test_a_wrong_webhook_is_refused(
    api: LocalBotApi, bot: Bot, params: dict[str, str], error: str
) -> None:
    from aiogram.methods import SetWebhook

    with pytest.raises(TelegramBadRequest, match=error.replace("(", r"\(").replace(")", r"\)")):
        await bot(SetWebhook(**params))
    assert not api.webhooks.active


async def test_an_empty_url_removes_the_webhook(
    api: LocalBotApi, bot: Bot, receiver: Receiver
) -> None:
    await bot.set_webhook(receiver.url)
    assert api.webhooks.active
    assert await bot.set_webhook("")
    assert not api.webhooks.active and await bot.get_updates(timeout=0) == []
