"""What reaches the webhook that Telegram did not send: a wrong or missing secret token (401),
bodies that are not updates (400), a huge body (413), the same update posted twice. None of it
is stored or answered, nothing crashes, and the bot goes on serving its users."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fault_kit import errors, idle
from tests.local_api import LocalBotApi
from tests.webhook_kit import SECRET, WebhookBot, running_webhook_bot

USER = 601


@pytest.fixture
async def env(api: LocalBotApi, tmp_path: Path) -> AsyncIterator[WebhookBot]:
    async with running_webhook_bot(api, tmp_path / "jokes.db") as running:
        yield running


def forged(update_id: int, text: str = "Кот", user: int = USER) -> dict[str, Any]:
    """An update as Telegram would send it, written by someone else."""
    person = {"id": user, "is_bot": False, "first_name": "Мэллори"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": user, "type": "private", "first_name": "Мэллори"},
            "from": person,
            "text": text,
        },
    }


def untouched(env: WebhookBot) -> None:
    assert env.count("jokes") == 0 and env.count("users") == 0 and env.count("votes") == 0
    assert env.app.tracker.last_update_id is None  # not even seen
    assert api_calls_to_users(env) == []
    assert errors(env) == 0


def api_calls_to_users(env: WebhookBot) -> list[str]:
    wanted = ("sendMessage", "sendChatAction", "answerCallbackQuery", "editMessageText")
    return [call.method for call in env.api.calls if call.method in wanted]


@pytest.mark.parametrize(
    "secret", [None, "", "wrong", SECRET + "x", SECRET[:-1], "секрет".encode().hex()]
)
async def test_a_wrong_or_missing_secret_is_401_and_changes_nothing(
    env: WebhookBot, secret: str | None
) -> None:
    status, body = await env.post(forged(10**9), secret=secret)
    assert status == 401 and "secret token" in body
    await idle(env)
    untouched(env)


async def test_a_non_ascii_secret_header_is_401_not_a_crash(env: WebhookBot) -> None:
    async with aiohttp.ClientSession() as http:
        headers = {"X-Telegram-Bot-Api-Secret-Token": "секрет".encode().decode("latin-1")}
        async with http.post(env.url, json=forged(10**9), headers=headers) as response:
            assert response.status == 401
    untouched(env)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json at all", 400),
        (b"\xff\xfe\x00garbage", 400),
        (b"", 400),
        ({"message": forged(1)["message"]}, 400),  # no update_id
        ({"update_id": "many"}, 400),
        ({"update_id": 5, "message": "Кот"}, 400),  # a message that is not a Message
        ([forged(5)], 400),  # a list of updates
        (b"{" + b" " * (2 * 1024 * 1024) + b"}", 413),  # 2 MiB
    ],
    ids=["text", "binary", "empty", "no-id", "bad-id", "bad-message", "list", "huge"],
)
async def test_a_body_that_is_not_an_update_is_refused(
    env: WebhookBot, body: bytes | dict[str, Any] | list[Any], status: int
) -> None:
    got, _ = await env.post(body)
    assert got == status
    await idle(env)
    untouched(env)
    env.api.send_text(USER, "Кот")  # and the bot goes on serving
    reply = await env.api.wait_for_bot_message(USER, timeout=10)
    assert (reply.text or "").startswith("Кот")


async def test_a_get_or_another_path_is_not_the_webhook(env: WebhookBot) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(env.url) as response:
            assert response.status == 405
        async with http.post(env.server.local_url + "/other", json=forged(1)) as response:
            assert response.status == 404
    untouched(env)


async def test_the_same_update_posted_twice_is_applied_once(env: WebhookBot) -> None:
    update = forged(10**9, "Заяц")
    env.api.ensure_chat(USER)  # the chat exists on the server, so the bot's reply lands there
    for _ in range(2):
        status, _ = await env.post(update)
        assert status == 200
    await idle(env)
    assert env.rows("SELECT prompt FROM jokes") == [("Заяц",)]
    assert env.app.tracker.skipped == 1
    assert len(env.api.bot_messages(USER)) == 1
