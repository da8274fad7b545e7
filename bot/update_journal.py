"""Webhook updates survive the replica that acknowledged them (REDIS_URL, several replicas).

A webhook replica answers Telegram 200 as soon as an update arrives: a joke takes seconds, and
Telegram, which sends a chat's updates one at a time, would hold the user's next tap behind it and
send the update again after its own timeout. Once answered, Telegram never sends it again, so a
replica killed mid-joke (SIGKILL, OOM, a lost host) would lose the word for good.

So before answering, the replica notes the update in the shared journal (`SharedState.hold`):
its body, and a lease on its key that this replica renews every `lease_s / 3` seconds while it
handles the update. Handled (joke sent, vote stored, or an apology), the key is settled: out of
the journal, and marked handled for a day, so a redelivery is skipped. Every replica sweeps the
journal as often: a key whose lease ran out belongs to a handler that died, and the first replica
to see it takes it over (atomically: one replica wins) and handles the update again. The user's
one-request-in-flight slot, still held by the dead handler, is taken over with it (the slot knows
which update it is for), so the user gets the joke rather than «уже пишу…».

The price is at-least-once, not exactly-once: a handler killed after it replied but before it
settled is handled again, and its user sees a second answer. That is why only messages (the words
people write) go through the journal. A 👍/👎 press is a toggle: run again after its vote was
stored, it would take the vote back (`python -m bench.scale --kill` caught exactly that), while a
lost press was never thanked, so its user sees the button spin and presses again. Presses, like
every other update, are claimed once by `UpdateTracker`. Without REDIS_URL there is one replica
and no journal: an acknowledged update dies with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable

from bot.shared_state import SharedState

log = logging.getLogger(__name__)

#: How long a dead handler's update waits before another replica takes it over.
LEASE_S = 10.0
#: How long a handled update stays marked, so that a redelivery is skipped (as bot/updates.py).
SETTLED_TTL_S = 24 * 3600.0

Feed = Callable[[str, str], Awaitable[None]]  # (key, payload) of an update taken over


def update_key(update_id: int) -> str:
    """The key the journal, the update tracker and the in-flight rule share for one update."""
    return f"update:{update_id}"


class UpdateJournal:
    """This replica's side of the journal: what it holds, renewing, settling, sweeping."""

    def __init__(self, state: SharedState, *, lease_s: float | None = None) -> None:
        self.state = state
        self.lease_s = lease_s or LEASE_S
        self.token = secrets.token_hex(8)  # this replica, in the leases it holds
        self.held: set[str] = set()
        self.taken_over = 0  # updates of dead handlers this replica handled again
        self.sweeping = True  # False once stopping: renew what is held, take nothing over
        self._unsettled: set[str] = set()  # settle failed (Redis away): tried on each beat

    async def accept(self, update_id: int, payload: str) -> str | None:
        """Hold the update for this replica; its key, or None if another handler holds it or it
        was handled (a redelivery: answer 200 and do nothing)."""
        key = update_key(update_id)
        if not await self.state.hold(key, payload, self.token, self.lease_s):
            return None
        self.held.add(key)
        return key

    async def settle(self, key: str) -> None:
        self.held.discard(key)
        try:
            await self.state.settle(key, SETTLED_TTL_S)
        except Exception as exc:  # a lease that runs out would hand a handled update over
            log.warning("could not settle %s (%s); trying again shortly", key, exc)
            self._unsettled.add(key)

    async def beat(self, feed: Feed) -> None:
        """One round: settle what failed to, renew this replica's leases, take over orphans."""
        for key in list(self._unsettled):
            self._unsettled.discard(key)
            await self.settle(key)
        if self.held:
            await self.state.renew(dict.fromkeys(self.held, self.token), self.lease_s)
        if not self.sweeping:
            return
        for key, payload in await self.state.orphans(self.token, self.lease_s):
            log.warning("taking over %s: the replica handling it stopped answering", key)
            self.held.add(key)
            self.taken_over += 1
            await feed(key, payload)

    async def run(self, feed: Feed) -> None:
        """Beat every `lease_s / 3` seconds until cancelled; a failed beat is logged, not fatal."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await self.beat(feed)
            except Exception:
                log.exception("the update journal's beat failed")

    async def close(self) -> None:
        """Settle what is still unsettled (the handlers are done by now)."""
        for key in list(self._unsettled):
            self._unsettled.discard(key)
            with contextlib.suppress(Exception):
                await self.state.settle(key, SETTLED_TTL_S)
