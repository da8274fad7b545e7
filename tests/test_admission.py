"""The backlog estimate behind "busy": per-method, per-batch-size running costs."""

from __future__ import annotations

import pytest

from generation.admission import SMOOTHING, BacklogEstimator


def test_nothing_measured_costs_nothing() -> None:
    estimate = BacklogEstimator(max_batch_size=32)
    assert estimate.seconds_per_row("gpt", 1) is None
    assert estimate.backlog_s([("gpt", 5), ("diffuseq", 3)]) == 0.0


def test_running_average_per_method() -> None:
    estimate = BacklogEstimator(max_batch_size=32)
    estimate.record("gpt", 1, 0.4)
    assert estimate.seconds_per_row("gpt", 1) == pytest.approx(0.4)
    estimate.record("gpt", 1, 0.2)
    assert estimate.seconds_per_row("gpt", 1) == pytest.approx(0.4 + SMOOTHING * (0.2 - 0.4))
    assert estimate.seconds_per_row("gpt-sample", 1) is None  # methods do not mix
    estimate.record("gpt", 0, 1.0)  # ignored: nothing to divide by
    assert estimate.seconds_per_row("gpt", 1) == pytest.approx(0.34)


def test_a_long_queue_is_priced_at_the_large_batch_rate() -> None:
    estimate = BacklogEstimator(max_batch_size=32)
    estimate.record("gpt-sample", 1, 0.2)  # alone: 0.2 s a joke
    estimate.record("gpt-sample", 32, 1.6)  # in a full batch: 0.05 s a joke
    assert estimate.seconds_per_row("gpt-sample", 3) == pytest.approx(0.2)
    assert estimate.seconds_per_row("gpt-sample", 16) == pytest.approx(0.05)
    # 100 queued sampling jokes: 5 s, not the 20 s the single-request rate would say
    assert estimate.backlog_s([("gpt-sample", 1)] * 100) == pytest.approx(5.0)
    # only a large batch seen: it prices small queues too, rather than nothing
    other = BacklogEstimator(max_batch_size=32)
    other.record("gpt", 20, 4.0)
    assert other.seconds_per_row("gpt", 1) == pytest.approx(0.2)


def test_backlog_adds_up_methods() -> None:
    estimate = BacklogEstimator(max_batch_size=4)
    estimate.record("gpt", 1, 0.5)
    estimate.record("diffuseq", 1, 2.0)
    work = [("gpt", 1), ("diffuseq", 1), ("gpt", 1), ("unknown", 7)]
    assert estimate.backlog_s(work) == pytest.approx(0.5 * 2 + 2.0)
