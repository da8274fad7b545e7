"""getUpdates (long polling with offset confirmation); the webhook methods are in webhook.py.

An update stays queued until the bot asks for a higher offset, as on Telegram, so a bot that
crashes between fetching and confirming gets the same update again. A second getUpdates while
one is waiting ends the first with 409 Conflict, the error two running bots see.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from local_telegram.params import ApiError, Params, bad_request
from local_telegram.records import UpdateRecord
from local_telegram.state import TelegramState

# Telegram sends these only to bots that ask for them in allowed_updates
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)


def confirm(state: TelegramState, offset: int) -> None:
    """Forget updates below `offset` (a negative offset keeps only the last -offset ones)."""
    now = time.monotonic()
    if offset < 0:
        keep = -offset
        while len(state.pending) > keep:
            state.pending.popleft().confirmed_at = now
        return
    confirmed = False
    while state.pending and state.pending[0].update_id < offset:
        state.pending.popleft().confirmed_at = now
        confirmed = True
    if confirmed:
        state.bump()  # wake test waiters on "all updates answered"


def available(state: TelegramState, limit: int) -> list[UpdateRecord]:
    """Up to `limit` queued updates of the kinds the bot asked for, oldest first."""
    allowed = state.allowed_updates
    batch: list[UpdateRecord] = []
    for record in list(state.pending):
        kind = record.kind
        wanted = kind not in NOT_BY_DEFAULT if allowed is None else kind in allowed
        if not wanted:  # Telegram never queues what the bot did not ask for
            record.dropped = True
            state.pending.remove(record)
            continue
        batch.append(record)
        if len(batch) >= limit:
            break
    return batch


async def _wait_for_updates(state: TelegramState, limit: int, timeout: float) -> list[UpdateRecord]:
    """The next batch, waiting up to `timeout` s for one; 409 when a newer poll takes over."""
    state.poll_generation += 1
    generation = state.poll_generation
    if state._waiting_polls:
        state.bump()  # Telegram ends the older request with 409 Conflict
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        batch = available(state, limit)
        remaining = deadline - loop.time()
        if batch or remaining <= 0 or state.closing:
            return batch
        changed = state.changed
        state._waiting_polls += 1
        try:
            await asyncio.wait_for(changed.wait(), remaining)
        except TimeoutError:
            pass
        finally:
            state._waiting_polls -= 1
        if generation != state.poll_generation:
            raise ApiError(409, CONFLICT)


async def get_updates(state: TelegramState, params: Params) -> list[dict[str, Any]]:
    offset = params.int("offset")
    limit = min(max(params.int("limit") or 100, 1), 100)
    timeout = max(params.float("timeout") or 0.0, 0.0)
    allowed = params.json("allowed_updates", "can't parse allowed_updates JSON object")
    if allowed is not None:
        if not isinstance(allowed, list):
            raise bad_request("can't parse allowed_updates JSON object")
        state.allowed_updates = frozenset(map(str, allowed)) or None
    if offset:
        confirm(state, offset)
    batch = await _wait_for_updates(state, limit, timeout)
    now = time.monotonic()
    for record in batch:
        if record.delivered_at is None:
            record.delivered_at = now
    if batch:
        state.bump()
    return [record.payload for record in batch]
