"""The journal of webhook updates (bot/update_journal.py, `SharedState.hold` and friends): in
memory and in a real Redis (tests/servers.py), then two webhook replicas where one stops dead
mid-joke and the other takes its update over."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram.client.telegram import TelegramAPIServer

from bot import texts
from bot.shared_redis import RedisState
from bot.shared_state import MemoryState, SharedState, Verdict
from bot.update_journal import UpdateJournal
from tests.fault_kit import FakeModel, db_rows
from tests.local_api import LocalBotApi
from tests.servers import RedisServer
from tests.webhook_kit import WebhookBot, free_port, running_webhook_bot

USER = 711


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def two_replicas(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[tuple[SharedState, SharedState, Clock | None]]:
    """Two replicas' views of one state: one MemoryState (a fake clock) or two Redis clients."""
    if request.param == "memory":
        clock = Clock()
        state = MemoryState(clock=clock)
        yield state, state, clock
        return
    prefix = f"journal-{request.node.name}:"
    pair = (
        RedisState(redis_server.url, prefix=prefix),
        RedisState(redis_server.url, prefix=prefix),
    )
    try:
        yield pair[0], pair[1], None
    finally:
        for state in pair:
            await state.close()


async def _wait(clock: Clock | None, seconds: float) -> None:
    if clock is None:
        await asyncio.sleep(seconds)
    else:
        clock.now += seconds


async def test_a_held_update_is_taken_over_only_after_its_lease_runs_out(two_replicas) -> None:
    a, b, clock = two_replicas
    assert await a.hold("update:1", '{"update_id": 1}', "A", 0.3)
    assert not await b.hold("update:1", '{"update_id": 1}', "B", 0.3)  # a redelivery, to B
    assert await b.orphans("B", 0.3) == []  # A is alive
    await _wait(clock, 0.2)
    await a.renew({"update:1": "A"}, 0.3)  # A's beat
    await _wait(clock, 0.2)
    assert await b.orphans("B", 0.3) == []  # renewed: still A's
    await _wait(clock, 0.4)  # A stopped beating: dead
    assert await b.orphans("B", 0.3) == [("update:1", '{"update_id": 1}')]
    assert await a.orphans("A", 0.3) == []  # taken once, by one replica
    await a.renew({"update:1": "A"}, 5.0)  # a late beat of A's does not take it back
    await _wait(clock, 0.4)
    assert await a.orphans("A", 0.3) == [("update:1", '{"update_id": 1}')]  # B died too


async def test_a_settled_update_is_never_held_or_taken_over_again(two_replicas) -> None:
    a, b, clock = two_replicas
    assert await a.hold("update:2", "{}", "A", 0.2)
    await a.settle("update:2", 60)
    await _wait(clock, 0.3)
    assert await b.orphans("B", 0.2) == []
    assert not await b.hold("update:2", "{}", "B", 0.2)
    assert not await a.claim("update:2", 60)  # the tracker's claim sees it handled too


async def test_the_in_flight_slot_of_an_update_passes_to_whoever_takes_the_update_over(
    two_replicas,
) -> None:
    a, b, _ = two_replicas
    dead = await a.admit(USER, 60, "update:3")  # never released: its replica died
    assert dead.admitted
    assert (await b.admit(USER, 60, "update:4")).verdict is Verdict.IN_FLIGHT  # another word
    assert (await b.admit(USER, 60)).verdict is Verdict.IN_FLIGHT
    again = await b.admit(USER, 60, "update:3")  # the same update, taken over
    assert again.admitted
    await dead.release()  # a late release of the dead handler's frees nothing of B's
    assert (await a.admit(USER, 0, "update:5")).verdict is Verdict.IN_FLIGHT
    await again.release()
    assert (await a.admit(USER, 60, "update:5")).verdict is Verdict.TOO_FAST  # B's rate window


async def test_a_settle_that_fails_is_tried_again_on_the_next_beat() -> None:
    state = MemoryState()
    journal = UpdateJournal(state, lease_s=60)
    key = await journal.accept(9, "{}")
    assert key == "update:9" and journal.held == {"update:9"}
    real_settle, calls = state.settle, []

    async def failing(key: str, ttl_s: float) -> None:
        calls.append(key)
        raise ConnectionError("Redis went away")

    state.settle = failing  # type: ignore[method-assign]
    await journal.settle(key)
    state.settle = real_settle  # type: ignore[method-assign]
    await journal.beat(_never_fed)
    assert calls == ["update:9"] and not journal.held
    assert await journal.accept(9, "{}") is None  # settled on the beat


async def _never_fed(key: str, payload: str) -> None:
    raise AssertionError(f"nothing was orphaned, yet {key} was taken over")


@contextlib.asynccontextmanager
async def _two_replicas(
    api: LocalBotApi, db: Path, redis: RedisServer, a_model: FakeModel
) -> AsyncIterator[tuple[WebhookBot, WebhookBot]]:
    """Replicas A and B on one database and one Redis; the local server posts to A."""
    async with (
        running_webhook_bot(api, db, FakeModel(), redis_url=redis.url) as b,
        running_webhook_bot(api, db, a_model, redis_url=redis.url) as a,  # set last: to A
    ):
        await _webhook_to(api, a)
        yield a, b


def _journal(env: WebhookBot) -> UpdateJournal:
    journal = env.server.endpoint.journal if env.server.endpoint is not None else None
    assert journal is not None
    return journal


async def _webhook_to(api: LocalBotApi, env: WebhookBot) -> None:
    """Wait until the local server posts to `env` (the replica that set its webhook last)."""
    await api.wait_until(
        lambda: api.webhooks.config is not None and api.webhooks.config.url == env.url,
        10,
        "the webhook to point at the second replica",
    )


@pytest.fixture
def short_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead replica's update is taken over within a second, not ten."""
    monkeypatch.setattr("bot.update_journal.LEASE_S", 0.6)


def _stop_dead(env: WebhookBot) -> None:
    """What a SIGKILL leaves of a replica: no more beats, and nothing it sends reaches Telegram."""
    assert env.server._beat is not None
    env.server._beat.cancel()
    env.app.bot.session.api = TelegramAPIServer.from_base(f"http://127.0.0.1:{free_port()}")


async def test_a_word_whose_replica_died_mid_joke_is_answered_by_the_other(
    api: LocalBotApi, tmp_path: Path, redis_server: RedisServer, short_lease: None
) -> None:
    db, slow = tmp_path / "jokes.db", FakeModel(delay=2.0)
    async with _two_replicas(api, db, redis_server, slow) as (a, b):
        api.send_text(USER, "Кот")
        assert await asyncio.to_thread(slow.started.wait, 5)  # A has the word and is writing
        _stop_dead(a)
        joke = await api.wait_for_bot_message(USER, timeout=10)
        assert (joke.text or "").startswith("Кот") and joke.text != texts.ALREADY_WRITING
        assert _journal(b).taken_over == 1
        await api.wait_until(
            lambda: db_rows(db, "SELECT message_id FROM jokes WHERE message_id IS NOT NULL"),
            5,
            "B to store the joke it sent",
        )
        assert db_rows(db, "SELECT prompt, message_id FROM jokes WHERE message_id IS NOT NULL") == [
            ("Кот", joke.message_id)
        ]
        assert [m.text for m in api.bot_messages(USER)] == [joke.text]


async def test_a_live_replica_keeps_its_slow_update(
    api: LocalBotApi, tmp_path: Path, redis_server: RedisServer, short_lease: None
) -> None:
    db = tmp_path / "jokes.db"
    async with _two_replicas(api, db, redis_server, FakeModel(delay=2.0)) as (_, b):
        api.send_text(USER, "Кот")  # takes A 2 s: three leases, renewed
        joke = await api.wait_for_bot_message(USER, timeout=10)
        await asyncio.sleep(1.0)  # B's sweeps meanwhile and after
        assert _journal(b).taken_over == 0
        assert [m.text for m in api.bot_messages(USER)] == [joke.text]


async def test_a_press_is_not_journaled_so_it_is_never_run_twice(
    api: LocalBotApi, tmp_path: Path, redis_server: RedisServer, short_lease: None
) -> None:
    """A 👍 is a toggle: taken over after its vote was stored, it would take the vote back."""
    db = tmp_path / "jokes.db"
    async with running_webhook_bot(api, db, FakeModel(), redis_url=redis_server.url) as env:
        journal = _journal(env)
        held: list[str] = []
        accept = journal.accept

        async def noting(update_id: int, payload: str) -> str | None:
            key = await accept(update_id, payload)
            held.append(str(key))
            return key

        journal.accept = noting  # type: ignore[method-assign]
        api.send_text(USER, "Кот")
        joke = await api.wait_for_bot_message(USER, timeout=10)
        query = api.press_button(USER, joke.message_id, text="👍 0")
        assert (await api.wait_for_callback_answer(query, timeout=10)).text == texts.VOTE_THANKS
        assert len(held) == 1  # the word only
        assert db_rows(db, "SELECT user_id, value FROM votes") == [(USER, 1)]
