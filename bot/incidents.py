"""Database trouble logged once per incident, with a count, instead of once per button press.

A full disk or a long lock fails every write for as long as it lasts. A traceback per failed press
(thousands of lines a minute with many users) buries the one line that matters and, on a full
disk, helps fill it. So the first failure of a kind opens an incident and is logged as one line;
later ones are counted, with a reminder at most every `remind_s`. An incident closes, with its
count, at the first successful write `settle_s` after its last failure: on a nearly full disk
writes fail and succeed by turns, and that is one incident, not one per success.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: what SQLite says -> the incident's name
KINDS = {
    "database or disk is full": "disk full",
    "database is locked": "database locked",
    "disk i/o error": "disk I/O error",
    "unable to open database": "database unavailable",
    # PostgreSQL
    "no space left on device": "disk full",
    "lock timeout": "database locked",
    "connection refused": "database unavailable",
    "the database system is": "database unavailable",  # starting up / shutting down
}


def kind_of(error: BaseException) -> str:
    """The incident an error belongs to: the database condition, else the error's type."""
    text = str(error).lower()
    return next((name for key, name in KINDS.items() if key in text), type(error).__name__)


@dataclass
class Incident:
    kind: str
    began: float
    failures: int = 1
    reminded: float = 0.0
    last_failure: float = 0.0


class StorageIncidents:
    def __init__(
        self,
        remind_s: float = 60.0,
        settle_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.remind_s = remind_s
        self.settle_s = settle_s
        self.clock = clock
        self.open: dict[str, Incident] = {}

    def failed(self, what: str, error: BaseException) -> None:
        """A write failed with `error` while doing `what` (e.g. "store a vote")."""
        kind = kind_of(error)
        now = self.clock()
        incident = self.open.get(kind)
        if incident is None:
            self.open[kind] = Incident(kind, began=now, reminded=now, last_failure=now)
            log.error(
                "storage: %s (could not %s: %s); further failures are counted until a write "
                "succeeds",
                kind,
                what,
                error,
            )
            return
        incident.failures += 1
        incident.last_failure = now
        if now - incident.reminded >= self.remind_s:
            incident.reminded = now
            log.error(
                "storage: still %s: %d failed writes in %.0f s",
                kind,
                incident.failures,
                now - incident.began,
            )

    def succeeded(self) -> None:
        """A write went through: incidents quiet for `settle_s` are over."""
        if not self.open:
            return
        now = self.clock()
        for kind, incident in list(self.open.items()):
            if now - incident.last_failure < self.settle_s:
                continue
            log.warning(
                "storage: recovered from %s after %d failed writes in %.0f s",
                kind,
                incident.failures,
                incident.last_failure - incident.began,
            )
            del self.open[kind]


__all__ = ["StorageIncidents", "kind_of"]
