"""How long the work already queued would take: the rule behind "busy".

Why: a fixed queue depth is wrong both ways. Measured with the whole bot (docs/BENCHMARKS.md §6),
100 users arriving within a second found a queue of 64 full and a third of them heard "busy",
although sampling then served 11 jokes/s and could have answered all of them in ~10 s; with a
deeper queue, beam search instead let requests wait out the full 30 s timeout and apologised.
So the service asks how long the queued work will take, from what batches of each method have
cost lately, and says "busy" at once only to a request that would not be served within its
timeout; the fixed depth stays as an upper bound.

The cost of a row falls with the batch size (32 sampled jokes cost ~8× one), so two averages are
kept per method: for small batches and for batches of at least half the maximum size. A queue of
at least half a batch is priced at the large-batch rate once one has been seen.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

#: weight of the newest batch in the running averages
SMOOTHING = 0.3
#: a request is turned away when the work ahead of it, its own included, would take more than this
#: share of its timeout: the estimate is an average, and "busy" now serves a user better than an
#: apology after the whole timeout
ADMIT_FRACTION = 0.8


class BacklogEstimator:
    """Running per-row costs per method (fed by the worker thread, read on the event loop)."""

    def __init__(self, max_batch_size: int) -> None:
        self.large_from = max(1, max_batch_size // 2)
        self._lock = threading.Lock()
        self._small: dict[str, float] = {}
        self._large: dict[str, float] = {}

    def record(self, method: str, rows: int, seconds: float) -> None:
        """A batch of `rows` rows of `method` took `seconds`."""
        if rows < 1 or seconds < 0:
            return
        per_row = seconds / rows
        averages = self._large if rows >= self.large_from else self._small
        with self._lock:
            old = averages.get(method)
            averages[method] = per_row if old is None else old + SMOOTHING * (per_row - old)

    def seconds_per_row(self, method: str, queued_rows: int) -> float | None:
        """What one of `queued_rows` rows of `method` is expected to cost; None if unmeasured."""
        with self._lock:
            small, large = self._small.get(method), self._large.get(method)
        if queued_rows >= self.large_from and large is not None:
            return large
        return small if small is not None else large

    def backlog_s(self, work: Iterable[tuple[str, int]]) -> float:
        """Seconds to serve `work`, (method, rows) pairs; methods never measured count as free,
        so before the first batch only the queue depth limits admission."""
        rows: dict[str, int] = {}
        for method, count in work:
            rows[method] = rows.get(method, 0) + count
        total = 0.0
        for method, count in rows.items():
            cost = self.seconds_per_row(method, count)
            if cost is not None:
                total += cost * count
        return total


__all__ = ["ADMIT_FRACTION", "SMOOTHING", "BacklogEstimator"]
