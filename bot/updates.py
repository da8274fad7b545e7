"""Each update is handled once, across restarts too.

Telegram forgets an update only when the bot asks for the next ones with a higher `offset`, and
aiogram does that on its *next* getUpdates. Updates handled just before a stop (or while
getUpdates keeps failing) are therefore delivered again after a restart, and a 👍 that arrives
twice is a toggle applied twice: the vote the user was thanked for disappears.

Three layers keep that from happening:

* `UpdateTracker` (an outer middleware on every update) remembers the highest update id handed
  to the handlers, and skips an update id or callback query id it has already seen.
* On stop, `BotApp.close` confirms that id with one `getUpdates(offset=last + 1, timeout=0)`.
* It also writes the id next to the database (`<db>-offset`, like SQLite's `-wal`); the next
  start skips updates at or below it. That covers a stop while Telegram is unreachable, when the
  confirmation itself fails. The file is trusted for a day only, and only by the same bot:
  after a week of silence Telegram may restart update ids from a random number.

A hard kill (SIGKILL, power loss) can still lead to one redelivery of the last few updates.

Several replicas (REDIS_URL, README "Scaling out"): each update id and callback query id is also
claimed in the shared state (a SET NX with a day's expiry), so an update delivered to two
replicas, or again after a restart, is applied by one only. The offset note is kept only beside
a SQLite file (`storage.db.sqlite_file`); on PostgreSQL the shared claims cover restarts. A webhook
replica holds each update in the shared journal before it answers Telegram (bot/update_journal.py)
and feeds it with `update_held=True`: that hold is its claim.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update
from aiogram.types.update import UpdateTypeLookupError

from bot.middlewares.handler import Handler
from bot.shared_state import SharedState

log = logging.getLogger(__name__)

OFFSET_MAX_AGE_S = 24 * 3600


class _Recent:
    """A bounded set: remembers the last `capacity` keys."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[Any, None] = OrderedDict()

    def add(self, key: Any) -> bool:
        """Remember `key`; False if it was already remembered."""
        if key in self._items:
            return False
        self._items[key] = None
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return True


class UpdateTracker(BaseMiddleware):
    """Outer middleware on `dp.update`: the highest update id handled, and no update twice."""

    def __init__(
        self, *, floor: int = 0, memory: int = 10_000, shared: SharedState | None = None
    ) -> None:
        self.floor = floor  # updates at or below were handled before the last restart
        self.shared = shared  # other replicas' handled updates (None: this process alone)
        self.last_update_id: int | None = None
        self.skipped = 0
        self._updates = _Recent(memory)
        self._queries = _Recent(memory)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        update_id = event.update_id
        query = event.callback_query
        if update_id > (self.last_update_id or 0):
            self.last_update_id = update_id
        if update_id <= self.floor:
            return self._skip(update_id, "handled before the restart")
        if not self._updates.add(update_id):
            return self._skip(update_id, "already handled")
        if query is not None and not self._queries.add(query.id):
            return self._skip(update_id, f"callback query {query.id} already handled")
        try:
            event.event_type  # noqa: B018
        except UpdateTypeLookupError:  # unreadable (see bot.resilience) or of an unknown kind
            return self._skip(update_id, "no event this bot can read")
        if self.shared is not None and not data.get("update_held"):
            keys = [f"update:{update_id}"] + ([f"query:{query.id}"] if query is not None else [])
            for key in keys:
                if not await self.shared.claim(key, OFFSET_MAX_AGE_S):
                    return self._skip(update_id, f"{key} handled by another replica")
        return await handler(event, data)

    def _skip(self, update_id: int, why: str) -> None:
        self.skipped += 1
        log.info("skipping update %d: %s", update_id, why)
        return None


class OffsetFile:
    """The last handled update id, kept in a small JSON file for the next start."""

    def __init__(self, path: Path, bot_id: int) -> None:
        self.path = path
        self.bot_id = bot_id
        self.taken_date: float | None = None  # when the note `take()` read was written

    @classmethod
    def beside(cls, database: Path | None, bot_id: int) -> OffsetFile | None:
        if database is None:
            return None
        return cls(database.with_name(database.name + "-offset"), bot_id)

    def take(self) -> int:
        """The stored id (0 if none, stale or another bot's); the file is removed."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            data = {}
        with contextlib.suppress(OSError):
            self.path.unlink()
        if not isinstance(data, dict) or data.get("bot_id") != self.bot_id:
            return 0
        written = data.get("written_at")
        if not isinstance(written, (int, float)) or time.time() - written > OFFSET_MAX_AGE_S:
            return 0
        value = data.get("last_update_id")
        if not isinstance(value, int) or value <= 0:
            return 0
        self.taken_date = float(written)
        return value

    def save(self, last_update_id: int, *, keep_date: bool = False) -> None:
        """Note the id. keep_date: a note carried over unchanged keeps its age, so it still
        expires a day after the update it is about."""
        written = self.taken_date if keep_date and self.taken_date else time.time()
        payload = {"bot_id": self.bot_id, "last_update_id": last_update_id, "written_at": written}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(payload), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not write %s: %s", self.path, exc)
            with contextlib.suppress(OSError):  # a half-written note (disk full) must not linger
                tmp.unlink(missing_ok=True)
