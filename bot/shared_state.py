"""State that bot replicas must share, behind one small interface: in this process's memory (one
bot, the default) or in Redis (`REDIS_URL`, several replicas behind one webhook).

What lives here: the per-user fairness rules of bot/middlewares/throttling.py (one request in
flight, one new request per `THROTTLE_RATE_S`, one warning per burst), the update ids already
handled (bot/updates.py: an update is applied once across all replicas), the journal of webhook
updates being handled (bot/update_journal.py: an update acknowledged by a replica that then died
is taken over by another), and the 🔁 cursors (bot/joke_teller.py `Variants`: the next beam for
"another joke on this word").

Redis down must not take the bot down: `FallbackState` answers from this replica's memory while
Redis does not answer, logs that once, and goes back to Redis when it answers again (tried at most
once a second meanwhile). Per replica, the rules then hold per replica only: a user could start
one joke on each replica, and an update delivered to two replicas could be handled twice.

aiogram's `RedisStorage`/`RedisEventIsolation` were not a fit: the bot has no FSM states, and event
isolation makes a user's second update wait for the first, where the rule is to refuse it at once
("уже пишу…").
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from settings import Settings

log = logging.getLogger(__name__)

#: How long an admitted request counts as in flight if its replica dies before finishing it,
#: beyond the longest a live replica may take (the joke's timeout and the shutdown grace): a
#: user whose request died with a SIGKILLed replica may write again soon after.
IN_FLIGHT_MARGIN_S = 10.0
#: How long a warning suppresses the next ones if no request is admitted meanwhile.
WARNED_TTL_S = 600.0
MEMORY_CAPACITY = 10_000


class Verdict(Enum):
    ADMITTED = "admitted"
    IN_FLIGHT = "in_flight"  # the user's previous request is still running: "уже пишу…"
    TOO_FAST = "too_fast"  # a request was admitted less than `rate_s` ago: "не так быстро"


async def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: Verdict
    #: ends the request (admitted ones only); never raises
    release: Callable[[], Awaitable[None]] = _nothing

    @property
    def admitted(self) -> bool:
        return self.verdict is Verdict.ADMITTED


class SharedState:
    """The interface; every method is safe to call concurrently."""

    #: whether other processes see the same state (False: this process's memory)
    shared: bool = False

    async def admit(self, user_id: int, rate_s: float, owner: str = "") -> Admission:
        """Start a request of `user_id` unless one is in flight or the last began < rate_s ago;
        an admitted request ends the user's burst of warnings.

        owner: what the request answers (an update's key). The same owner is admitted again
        while its old admission holds: that is an update taken over from a replica that died
        mid-request (bot/update_journal.py), not a second request of the user."""
        raise NotImplementedError

    async def warn_once(self, user_id: int) -> bool:
        """True for the first refusal of a burst (the one worth a message)."""
        raise NotImplementedError

    async def claim(self, key: str, ttl_s: float) -> bool:
        """True the first time `key` is claimed within `ttl_s` seconds."""
        raise NotImplementedError

    async def next_count(self, key: str, ttl_s: float) -> int:
        """1, 2, 3, ... for successive calls with `key` (forgotten after `ttl_s` idle)."""
        raise NotImplementedError

    # --- the journal of updates being handled (bot/update_journal.py) --------------------------

    async def hold(self, key: str, payload: str, token: str, lease_s: float) -> bool:
        """Take `key` for `lease_s` seconds and note `payload` in the journal; False if the key is
        held by a live handler or was settled."""
        raise NotImplementedError

    async def renew(self, held: dict[str, str], lease_s: float) -> None:
        """Extend the leases of `held` (key -> token) that are still ours."""
        raise NotImplementedError

    async def settle(self, key: str, ttl_s: float) -> None:
        """`key` is handled: taken by no one for `ttl_s` seconds, and out of the journal."""
        raise NotImplementedError

    async def orphans(self, token: str, lease_s: float) -> list[tuple[str, str]]:
        """Take over the journal's keys whose lease ran out (their handler died): each is held
        under `token` now; returns (key, payload) for each."""
        raise NotImplementedError

    async def close(self) -> None:
        return None


class MemoryState(SharedState):
    """This process's memory, bounded; what the bot always did without Redis."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, capacity: int = MEMORY_CAPACITY
    ) -> None:
        self.clock = clock
        self.capacity = capacity
        self.in_flight: dict[int, tuple[str, object]] = {}  # user -> (owner, this admission)
        self.last_start: dict[int, float] = {}
        self.warned: set[int] = set()
        self._claims: OrderedDict[str, float] = OrderedDict()
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._holds: dict[str, tuple[str, float]] = {}  # key -> (token, lease end)
        self._journal: dict[str, str] = {}  # key -> payload

    async def admit(self, user_id: int, rate_s: float, owner: str = "") -> Admission:
        running = self.in_flight.get(user_id)
        again = bool(owner) and running is not None and running[0] == owner
        if running is not None and not again:
            return Admission(Verdict.IN_FLIGHT)
        now = self.clock()
        if not again and now - self.last_start.get(user_id, float("-inf")) < rate_s:
            return Admission(Verdict.TOO_FAST)
        self.last_start[user_id] = now
        self.warned.discard(user_id)
        mine = self.in_flight[user_id] = (owner, object())

        async def release() -> None:
            if self.in_flight.get(user_id) is mine:  # not a newer admission's
                del self.in_flight[user_id]
            self._forget_old(now, rate_s)

        return Admission(Verdict.ADMITTED, release)

    async def warn_once(self, user_id: int) -> bool:
        if user_id in self.warned:
            return False
        self.warned.add(user_id)
        return True

    async def claim(self, key: str, ttl_s: float) -> bool:
        now = self.clock()
        expires = self._claims.get(key)
        if expires is not None and expires > now:
            return False
        self._claims.pop(key, None)
        self._claims[key] = now + ttl_s
        _bound(self._claims, self.capacity)
        return True

    async def next_count(self, key: str, ttl_s: float) -> int:
        count = self._counts.pop(key, 0) + 1
        self._counts[key] = count
        _bound(self._counts, self.capacity)
        return count

    async def hold(self, key: str, payload: str, token: str, lease_s: float) -> bool:
        now = self.clock()
        if self._claims.get(key, now) > now:  # settled
            return False
        held = self._holds.get(key)
        if held is not None and held[1] > now:
            return False
        self._holds[key] = (token, now + lease_s)
        self._journal[key] = payload
        return True

    async def renew(self, held: dict[str, str], lease_s: float) -> None:
        until = self.clock() + lease_s
        for key, token in held.items():
            if self._holds.get(key, ("", 0.0))[0] == token:
                self._holds[key] = (token, until)

    async def settle(self, key: str, ttl_s: float) -> None:
        self._holds.pop(key, None)
        self._journal.pop(key, None)
        self._claims.pop(key, None)
        self._claims[key] = self.clock() + ttl_s
        _bound(self._claims, self.capacity)

    async def orphans(self, token: str, lease_s: float) -> list[tuple[str, str]]:
        now = self.clock()
        taken = [
            (key, payload)
            for key, payload in self._journal.items()
            if self._holds.get(key, ("", 0.0))[1] <= now
        ]
        for key, _ in taken:
            self._holds[key] = (token, now + lease_s)
        return taken

    def _forget_old(self, now: float, rate_s: float) -> None:
        """Keep memory bounded: drop users whose last request is long past."""
        if len(self.last_start) < self.capacity:
            return
        horizon = now - max(rate_s, 1.0) * 10
        for user_id in [u for u, t in self.last_start.items() if t < horizon]:
            del self.last_start[user_id]
            self.warned.discard(user_id)


def _bound(items: OrderedDict[str, Any], capacity: int) -> None:
    while len(items) > capacity:
        items.popitem(last=False)


class FallbackState(SharedState):
    """`primary` (Redis) while it answers, else `fallback` (memory); see the module's docstring."""

    shared = True

    def __init__(
        self,
        primary: SharedState,
        fallback: SharedState,
        *,
        errors: tuple[type[BaseException], ...],
        retry_after_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary, self.fallback = primary, fallback
        self.errors = errors
        self.retry_after_s = retry_after_s
        self.clock = clock
        self.down = False
        self._next_try = 0.0

    async def _call(self, name: str, *args: Any) -> Any:
        if not self.down or self.clock() >= self._next_try:
            try:
                result = await getattr(self.primary, name)(*args)
            except self.errors as exc:
                if not self.down:
                    log.warning(
                        "Redis does not answer (%s: %s): rate limits, handled updates and 🔁 "
                        "cursors are per replica until it does",
                        type(exc).__name__,
                        exc,
                    )
                self.down = True
                self._next_try = self.clock() + self.retry_after_s
            else:
                if self.down:
                    log.info("Redis answers again: the state is shared across replicas again")
                self.down = False
                return result
        return await getattr(self.fallback, name)(*args)

    async def admit(self, user_id: int, rate_s: float, owner: str = "") -> Admission:
        admission: Admission = await self._call("admit", user_id, rate_s, owner)
        if not admission.admitted:
            return admission
        release = admission.release

        async def release_quietly() -> None:
            try:
                await release()
            except self.errors as exc:  # Redis went away meanwhile: the lease expires instead
                log.debug("could not end a request in Redis: %s", exc)

        return Admission(Verdict.ADMITTED, release_quietly)

    async def warn_once(self, user_id: int) -> bool:
        return bool(await self._call("warn_once", user_id))

    async def claim(self, key: str, ttl_s: float) -> bool:
        return bool(await self._call("claim", key, ttl_s))

    async def next_count(self, key: str, ttl_s: float) -> int:
        return int(await self._call("next_count", key, ttl_s))

    async def hold(self, key: str, payload: str, token: str, lease_s: float) -> bool:
        return bool(await self._call("hold", key, payload, token, lease_s))

    async def renew(self, held: dict[str, str], lease_s: float) -> None:
        await self._call("renew", held, lease_s)

    async def settle(self, key: str, ttl_s: float) -> None:
        await self._call("settle", key, ttl_s)

    async def orphans(self, token: str, lease_s: float) -> list[tuple[str, str]]:
        return list(await self._call("orphans", token, lease_s))

    async def close(self) -> None:
        await self.primary.close()
        await self.fallback.close()


def shared_state(settings: Settings) -> SharedState | None:
    """Redis (with the memory fallback) when `REDIS_URL` is set; None: plain memory, as always."""
    if not settings.redis_url:
        return None
    from bot.shared_redis import REDIS_ERRORS, RedisState

    token = settings.token() or ""
    bot_id = token.partition(":")[0] or "bot"  # two bots may share one Redis
    return FallbackState(
        RedisState(
            settings.redis_url,
            prefix=f"funny-and-tochka:{bot_id}:",
            lease_s=settings.generation_timeout_s + settings.shutdown_grace_s + IN_FLIGHT_MARGIN_S,
        ),
        MemoryState(),
        errors=REDIS_ERRORS,
    )
