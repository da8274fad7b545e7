"""How long the work already queued would take: the rule behind "busy".

Why: a fixed queue depth is wrong both ways (docs/BENCHMARKS.md §6): with a shallow queue, a
burst of users hears "busy" although the queued sampling work would have been served well
within the timeout; with a deep one, slow beam-search work lets requests wait out the whole
timeout and apologises.
So the service asks how long the queued work will take and says "busy" at once only to a request
that would not be served within its timeout; the fixed depth stays as an upper bound.

What a batch costs is modelled per method as `a + b * rows` (a fixed part, the weights read once
per step, plus a part per row), fitted by least squares to recent batches with exponential
forgetting. That is what lets the estimate price a queue of 100 at the rate of the 32-row batches
it will run as, from the 1–10-row batches of a quieter minute: a per-row average of single
requests overprices it several times, since a row added to a batch costs far less than a batch.
With only one batch size
seen so far, the cost is taken as proportional to the rows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

#: each new batch multiplies the weight of the older ones by this (a memory of ~10 batches)
KEEP = 0.9
#: a request is turned away when the work ahead of it, its own included, would take more than this
#: share of its timeout: the estimate is an average, and "busy" now serves a user better than an
#: apology after the whole timeout
ADMIT_FRACTION = 0.8
#: below this variance of the batch sizes seen, no slope is fitted (cost taken as per row)
MIN_SIZE_VARIANCE = 0.25


@dataclass
class BatchCost:
    """Exponentially weighted sums for the least-squares fit of seconds = a + b * rows."""

    weight: float = 0.0
    rows: float = 0.0
    seconds: float = 0.0
    rows_sq: float = 0.0
    rows_seconds: float = 0.0

    def add(self, rows: int, seconds: float, keep: float = KEEP) -> None:
        self.weight = self.weight * keep + 1.0
        self.rows = self.rows * keep + rows
        self.seconds = self.seconds * keep + seconds
        self.rows_sq = self.rows_sq * keep + rows * rows
        self.rows_seconds = self.rows_seconds * keep + rows * seconds

    def predict(self, rows: int) -> float:
        """Expected seconds for one batch of `rows` rows."""
        mean_rows = self.rows / self.weight
        mean_seconds = self.seconds / self.weight
        variance = self.rows_sq / self.weight - mean_rows * mean_rows
        if variance >= MIN_SIZE_VARIANCE:
            slope = (self.rows_seconds / self.weight - mean_rows * mean_seconds) / variance
            fixed = mean_seconds - slope * mean_rows
            if slope > 0 and fixed >= 0:
                return fixed + slope * rows
        return mean_seconds / mean_rows * rows  # one size seen, or a fit noise made absurd


class BacklogEstimator:
    """Batch costs per method (fed by the worker thread, read on the event loop)."""

    def __init__(self, max_batch_size: int) -> None:
        self.max_batch_size = max(1, max_batch_size)
        self._lock = threading.Lock()
        self._costs: dict[str, BatchCost] = {}

    def record(self, method: str, rows: int, seconds: float) -> None:
        """A batch of `rows` rows of `method` took `seconds`."""
        if rows < 1 or seconds < 0:
            return
        with self._lock:
            self._costs.setdefault(method, BatchCost()).add(rows, seconds)

    def batch_seconds(self, method: str, rows: int) -> float | None:
        """Expected seconds for one batch of `rows` rows of `method`; None if never measured."""
        with self._lock:
            cost = self._costs.get(method)
            return None if cost is None else cost.predict(rows)

    def backlog_s(self, work: Iterable[tuple[str, int]]) -> float:
        """Seconds to serve `work`, (method, rows) pairs, in batches of at most the maximum size;
        methods never measured count as free, so before the first batch only the queue depth
        limits admission."""
        rows: dict[str, int] = {}
        for method, count in work:
            rows[method] = rows.get(method, 0) + count
        total = 0.0
        for method, count in rows.items():
            full, rest = divmod(count, self.max_batch_size)
            whole = self.batch_seconds(method, self.max_batch_size) if full else 0.0
            part = self.batch_seconds(method, rest) if rest else 0.0
            if whole is not None and part is not None:
                total += full * whole + part
        return total


__all__ = ["ADMIT_FRACTION", "KEEP", "BacklogEstimator", "BatchCost"]
