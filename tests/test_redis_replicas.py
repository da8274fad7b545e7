"""Two bot replicas (two `create_app`s in one process, as two containers behind one webhook would
run) sharing one Redis (tests/servers.py) and one database: the per-user limits, the handled
updates and the votes hold across them. Updates are fetched once from the local Bot API server and
handed to the replicas as a load balancer would; the model is a fake (tests/fault_kit.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiogram.types import Update

from bot import texts
from bot.app import BotApp, create_app
from settings import Settings
from tests.fault_kit import FAST_BACKOFF, FakeModel, db_rows, fake_registry, fake_settings
from tests.local_api import LocalBotApi
from tests.servers import PostgresServer, RedisServer, pg_rows


class Balancer:
    """Fetches the local server's updates once and hands each to the replica the test names."""

    def __init__(self, api: LocalBotApi) -> None:
        self.poller = api.make_bot()
        self.offset = 0

    async def take(self, count: int) -> list[Update]:
        taken: list[Update] = []
        while len(taken) < count:
            got = await self.poller.get_updates(offset=self.offset, timeout=1)
            taken += got
            if got:
                self.offset = got[-1].update_id + 1
        assert len(taken) == count, taken
        return taken

    @staticmethod
    async def deliver(app: BotApp, update: Update) -> None:
        await app.dispatcher.feed_update(app.bot, update)


@contextlib.asynccontextmanager
async def replicas(
    api: LocalBotApi, settings: Settings, models: Sequence[FakeModel]
) -> AsyncIterator[tuple[list[BotApp], Balancer]]:
    apps: list[BotApp] = []
    balancer = Balancer(api)
    try:
        for model in models:
            apps.append(
                await create_app(settings, registry=fake_registry(model), backoff=FAST_BACKOFF)
            )
        yield apps, balancer
    finally:
        for app in apps:
            await app.close()
            shared = app.dispatcher.get("shared_state")
            if shared is not None:
                await shared.close()
        await balancer.poller.session.close()


def settings_for(api: LocalBotApi, db: Path, redis: RedisServer, **overrides: Any) -> Settings:
    return fake_settings(api, db, redis_url=redis.url, **overrides)


def bot_texts(api: LocalBotApi, chat_id: int) -> list[str]:
    return [m.text or "" for m in api.bot_messages(chat_id)]


async def test_rate_limit_and_one_request_in_flight_hold_across_replicas(
    api: LocalBotApi, tmp_path: Path, redis_server: RedisServer
) -> None:
    db = tmp_path / "jokes.db"
    settings = settings_for(api, db, redis_server, throttle_rate_s=60)
    async with replicas(api, settings, [FakeModel(delay=0.8), FakeModel()]) as ((a, b), lb):
        # a joke on replica A, then the next request on B falls in A's rate window
        api.send_text(601, "Кот")
        await lb.deliver(a, *(await lb.take(1)))
        api.send_text(601, "Пёс")
        api.send_text(601, "Сыр")
        too_fast, silent = await lb.take(2)
        await lb.deliver(b, too_fast)
        await lb.deliver(a, silent)  # one warning per burst, whichever replica gave it
        shown = bot_texts(api, 601)
        assert len(shown) == 2 and shown[0].startswith("Кот") and shown[1] == texts.TOO_FAST

        # a request in flight on A: the same user's next one on B is refused at once
        api.send_text(602, "Кот")
        api.send_text(602, "Пёс")
        first, second = await lb.take(2)
        running = asyncio.create_task(lb.deliver(a, first))
        await api.wait_until(lambda: api.chat_actions(602), 5, "A to start writing")
        await lb.deliver(b, second)
        assert bot_texts(api, 602) == [texts.ALREADY_WRITING]
        await running
        assert bot_texts(api, 602)[-1].startswith("Кот")
    assert db_rows(db, "SELECT user_id, prompt FROM jokes ORDER BY id") == [
        (601, "Кот"), (602, "Кот"),
    ]  # fmt: skip


async def test_an_update_delivered_to_both_replicas_is_applied_once(
    api: LocalBotApi, tmp_path: Path, redis_server: RedisServer
) -> None:
    db = tmp_path / "jokes.db"
    async with replicas(api, settings_for(api, db, redis_server), [FakeModel()] * 2) as (
        (a, b),
        lb,
    ):
        api.send_text(603, "Кот")
        (update,) = await lb.take(1)
        await asyncio.gather(lb.deliver(a, update), lb.deliver(b, update))
        await lb.deliver(b, update)  # delivered again later (a webhook retried)
        assert a.tracker.skipped + b.tracker.skipped == 2
    assert len(api.bot_messages(603)) == 1
    assert db_rows(db, "SELECT COUNT(*) FROM jokes") == [(1,)]


async def test_a_storm_of_presses_across_replicas_leaves_one_vote_row_on_postgres(
    api: LocalBotApi, tmp_path: Path, redis_server: RedisServer, postgres_server: PostgresServer
) -> None:
    url = postgres_server.new_database()
    settings = settings_for(api, tmp_path / "unused.db", redis_server, database_url=url)
    async with replicas(api, settings, [FakeModel()] * 2) as ((a, b), lb):
        api.send_text(604, "Кот")
        await lb.deliver(a, *(await lb.take(1)))
        joke = api.bot_messages(604)[0]
        # 51 presses of 👍 by one user at once, half on each replica: toggles applied one after
        # another (26 sets, 25 removals), ending with exactly one like
        queries = [api.press_button(604, joke.message_id, text="👍 0") for _ in range(51)]
        presses = await lb.take(51)
        await asyncio.gather(*(lb.deliver((a, b)[n % 2], u) for n, u in enumerate(presses)))
        answers = [api.callback_answer(q) for q in queries]
        assert not any(answer.show_alert for answer in answers)
        assert Counter(answer.text for answer in answers) == {
            texts.VOTE_THANKS: 26, texts.VOTE_REMOVED: 25,
        }  # fmt: skip
        assert pg_rows(url, "SELECT user_id, value FROM votes") == [(604, 1)]

        # one press of 👎 delivered 50 times (25 to each replica): applied once
        query = api.press_button(604, joke.message_id, text="👎 0")
        (press,) = await lb.take(1)
        skipped = a.tracker.skipped + b.tracker.skipped
        await asyncio.gather(*(lb.deliver((a, b)[n % 2], press) for n in range(50)))
        assert a.tracker.skipped + b.tracker.skipped - skipped == 49
        assert api.callback_answer(query).text == texts.VOTE_THANKS
        assert pg_rows(url, "SELECT user_id, value FROM votes") == [(604, -1)]


async def test_replicas_keep_answering_while_redis_is_down(
    api: LocalBotApi, tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "jokes.db"
    async with replicas(api, settings_for(api, db, redis_server), [FakeModel()] * 2) as (
        (a, b),
        lb,
    ):
        redis_server.stop()
        with caplog.at_level(logging.WARNING, logger="bot.shared_state"):
            for n, word in enumerate(["Кот", "Пёс", "Сыр"]):
                api.send_text(605, word)
                await lb.deliver((a, b)[n % 2], *(await lb.take(1)))
    assert [t.split()[0] for t in bot_texts(api, 605)] == ["Кот", "Пёс", "Сыр"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.shared_state"]
    assert len(warnings) == 2  # one line per replica, not one per update
    assert all("Redis does not answer" in w for w in warnings)
