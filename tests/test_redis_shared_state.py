"""bot/shared_state.py against a real redis-server (tests/servers.py): the rules hold across two
clients ("replicas"), and a Redis that stops answering falls back to memory and comes back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from bot.joke_teller import Variants
from bot.shared_redis import REDIS_ERRORS, RedisState
from bot.shared_state import FallbackState, MemoryState, SharedState, Verdict, shared_state
from generation.registry import MethodRegistry
from settings import Settings
from tests.fault_kit import FakeModel
from tests.servers import RedisServer

USER = 501


@pytest.fixture
async def replicas(redis_server: RedisServer) -> AsyncIterator[tuple[RedisState, RedisState]]:
    """Two clients of one Redis, as two bot replicas hold them."""
    pair = (RedisState(redis_server.url, prefix="t:"), RedisState(redis_server.url, prefix="t:"))
    try:
        yield pair
    finally:
        for state in pair:
            await state.close()


async def test_one_request_in_flight_and_the_rate_window_hold_across_replicas(replicas) -> None:
    a, b = replicas
    first = await a.admit(USER, 0.3)
    assert first.verdict is Verdict.ADMITTED
    assert (await b.admit(USER, 0.3)).verdict is Verdict.IN_FLIGHT
    assert (await a.admit(USER + 1, 0.3)).admitted  # other users are never affected
    await first.release()
    assert (await b.admit(USER, 0.3)).verdict is Verdict.TOO_FAST
    await asyncio.sleep(0.35)  # the window is Redis's own expiry: no clock to agree on
    again = await b.admit(USER, 0.3)
    assert again.admitted
    await again.release()


async def test_concurrent_requests_of_one_user_admit_exactly_one(replicas) -> None:
    a, b = replicas
    verdicts = await asyncio.gather(*((a, b)[n % 2].admit(USER, 0) for n in range(40)))
    assert sum(v.admitted for v in verdicts) == 1


async def test_a_request_whose_replica_died_frees_the_user_after_the_lease(
    redis_server: RedisServer,
) -> None:
    dying = RedisState(redis_server.url, prefix="lease:", lease_s=0.5)
    other = RedisState(redis_server.url, prefix="lease:", lease_s=0.5)
    try:
        assert (await dying.admit(USER, 0)).admitted  # never released: its replica was killed
        assert (await other.admit(USER, 0)).verdict is Verdict.IN_FLIGHT
        await asyncio.sleep(0.6)
        later = await other.admit(USER, 0)
        assert later.admitted
        await later.release()
    finally:
        await dying.close()
        await other.close()


def test_the_lease_outlasts_a_live_request_by_a_margin_only() -> None:
    from bot.shared_state import IN_FLIGHT_MARGIN_S, shared_state
    from settings import Settings

    settings = Settings(
        _env_file=None, redis_url="redis://127.0.0.1:9/0", generation_timeout_s=20,
        shutdown_grace_s=5,
    )  # fmt: skip
    state = shared_state(settings)
    assert state is not None
    assert state.primary.lease_s == 20 + 5 + IN_FLIGHT_MARGIN_S


async def test_one_warning_per_burst_across_replicas(replicas) -> None:
    a, b = replicas
    assert await a.warn_once(USER) and not await b.warn_once(USER)
    admitted = await b.admit(USER, 0)  # an admitted request ends the burst
    await admitted.release()
    assert await b.warn_once(USER) and not await a.warn_once(USER)


async def test_claims_and_counts_are_shared(replicas) -> None:
    a, b = replicas
    results = await asyncio.gather(*((a, b)[n % 2].claim("update:7", 60) for n in range(20)))
    assert results.count(True) == 1
    assert not await a.claim("update:7", 60) and await b.claim("update:8", 60)
    assert [await (a, b)[n % 2].next_count("k", 60) for n in range(4)] == [1, 2, 3, 4]


async def test_the_more_button_cursor_goes_on_across_replicas(replicas) -> None:
    registry = MethodRegistry()
    registry.add_backend("fake", FakeModel())
    registry.add_method("gpt", "GPT", "fake", {"do_sample": False})
    registry.add_method("gpt-sample", "GPT (sampling)", "fake", {"do_sample": True})
    a, b = (Variants(registry, shared=state) for state in replicas)
    seeds = [await (a, b)[n % 2].next(USER, "Кот", "gpt") for n in range(4)]
    assert seeds == [1, 2, 3, 4]  # the next beam each time, whichever replica handles 🔁
    assert await b.next(USER, "кот", "gpt") == 5  # the word's case does not matter
    assert await a.next(USER, "Кот", "gpt-sample") is None  # sampling draws afresh anyway


async def test_a_silent_redis_falls_back_to_memory_logs_once_and_comes_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    state = FallbackState(
        RedisState(redis_server.url, prefix="t:"), MemoryState(), errors=REDIS_ERRORS,
        retry_after_s=0.1,
    )  # fmt: skip
    try:
        assert await state.claim("update:1", 60)
        redis_server.stop()
        with caplog.at_level(logging.INFO, logger="bot.shared_state"):
            for _ in range(5):  # the bot keeps answering, from this replica's memory
                admission = await state.admit(USER, 0)
                assert admission.admitted
                await admission.release()  # ending a request must not fail either
                await asyncio.sleep(0.03)
            assert await state.claim("update:2", 60) and not await state.claim("update:2", 60)
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1 and "Redis does not answer" in warnings[0].getMessage()
            assert state.down

            redis_server.start()
            await asyncio.sleep(0.15)
            assert await state.claim("update:3", 60)  # from Redis again
        assert not state.down
        assert "Redis answers again" in caplog.text
        other = RedisState(redis_server.url, prefix="t:")  # another replica sees the claim
        try:
            assert not await other.claim("update:3", 60)
        finally:
            await other.close()
    finally:
        await state.close()


async def test_an_admission_ended_after_redis_went_away_does_not_fail(
    redis_server: RedisServer,
) -> None:
    state = FallbackState(RedisState(redis_server.url), MemoryState(), errors=REDIS_ERRORS)
    try:
        admission = await state.admit(USER, 0)
        redis_server.stop()
        await admission.release()  # the lease expires in Redis instead
    finally:
        await state.close()


def test_without_redis_url_the_state_stays_in_memory() -> None:
    assert shared_state(Settings(_env_file=None)) is None  # type: ignore[call-arg]
    configured = shared_state(
        Settings(_env_file=None, redis_url="redis://127.0.0.1:1/0", bot_token="42:x")  # type: ignore[call-arg]
    )
    assert isinstance(configured, FallbackState) and configured.shared
    assert isinstance(configured.primary, RedisState)
    assert configured.primary.prefix == "funny-and-tochka:42:"  # two bots can share a Redis
    assert not isinstance(MemoryState(), FallbackState) and not SharedState.shared
