"""The backlog estimate behind "busy": batch costs per method, fitted as a + b * rows."""

from __future__ import annotations

import pytest

from generation.admission import BacklogEstimator


def test_nothing_measured_costs_nothing() -> None:
    estimate = BacklogEstimator(max_batch_size=32)
    assert estimate.batch_seconds("gpt", 1) is None
    assert estimate.backlog_s([("gpt", 5), ("diffuseq", 3)]) == 0.0


def test_one_batch_size_seen_prices_work_per_row() -> None:
    estimate = BacklogEstimator(max_batch_size=32)
    estimate.record("gpt", 1, 0.4)
    estimate.record("gpt", 1, 0.4)
    assert estimate.batch_seconds("gpt", 3) == pytest.approx(1.2)
    assert estimate.batch_seconds("gpt-sample", 1) is None  # methods do not mix
    estimate.record("gpt", 0, 9.0)  # ignored: nothing to divide by
    assert estimate.batch_seconds("gpt", 1) == pytest.approx(0.4)


def test_a_long_queue_is_priced_as_the_full_batches_it_will_run_as() -> None:
    estimate = BacklogEstimator(max_batch_size=32)
    # a quiet minute: batches of 1-8 rows costing 0.15 s + 0.05 s a row
    for rows in (1, 4, 8, 2, 1, 6):
        estimate.record("gpt-sample", rows, 0.15 + 0.05 * rows)
    assert estimate.batch_seconds("gpt-sample", 1) == pytest.approx(0.2)
    assert estimate.batch_seconds("gpt-sample", 32) == pytest.approx(1.75)
    # 100 queued jokes: three batches of 32 and one of 4, ~5.6 s; 20 s at the single-joke rate
    assert estimate.backlog_s([("gpt-sample", 1)] * 100) == pytest.approx(3 * 1.75 + 0.35)


def test_the_fit_follows_a_change_of_pace() -> None:
    estimate = BacklogEstimator(max_batch_size=32)
    for _ in range(20):
        estimate.record("gpt", 1, 1.0)  # a slow spell
    for _ in range(30):
        estimate.record("gpt", 1, 0.1)
    cost = estimate.batch_seconds("gpt", 1)
    assert cost is not None and 0.1 <= cost < 0.15  # the slow spell has all but faded


def test_a_fit_noise_makes_absurd_falls_back_to_per_row() -> None:
    estimate = BacklogEstimator(max_batch_size=32)
    estimate.record("gpt", 2, 1.0)  # larger batches cheaper than small ones: negative slope
    estimate.record("gpt", 10, 0.5)
    per_row = (1.0 * 0.9 + 0.5) / (2 * 0.9 + 10) * 32  # weighted mean cost per row, x 32
    assert estimate.batch_seconds("gpt", 32) == pytest.approx(per_row)


def test_backlog_adds_up_methods() -> None:
    estimate = BacklogEstimator(max_batch_size=4)
    estimate.record("gpt", 1, 0.5)
    estimate.record("diffuseq", 1, 2.0)
    work = [("gpt", 1), ("diffuseq", 1), ("gpt", 1), ("unknown", 7)]
    assert estimate.backlog_s(work) == pytest.approx(0.5 * 2 + 2.0)
