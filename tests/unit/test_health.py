"""/healthz: 503 with no partitions, or with lag and no progress; 200 otherwise."""
from __future__ import annotations

import time

from streams.health import WorkerState

TP = ("orders.public.customers", 0)


def test_no_partitions_is_unhealthy():
    health = WorkerState("p").evaluate(set(), {})
    assert not health.healthy and "no partitions" in health.reason


def test_lag_without_progress_is_unhealthy_and_lag_alone_is_not():
    state = WorkerState("p", stall_after=10)
    state.applied_offsets[TP] = 4           # next to read: 5
    assert state.evaluate({TP}, {TP: 9}).healthy  # lag 4, progress just now
    state.last_progress = time.monotonic() - 11
    health = state.evaluate({TP}, {TP: 9})
    assert not health.healthy and health.details["lag"] == 4


def test_restarted_worker_on_an_idle_topic_is_healthy():
    """Nothing applied by this process yet: the consumer's position is the baseline, not offset 0."""
    state = WorkerState("p", stall_after=10)
    state.last_progress = time.monotonic() - 1000
    assert state.evaluate({TP}, {TP: 9}, positions={TP: 9}).healthy
    assert not state.evaluate({TP}, {TP: 9}, positions={TP: 3}).healthy


def test_caught_up_idle_worker_is_healthy():
    state = WorkerState("p", stall_after=10)
    state.applied_offsets[TP] = 8
    state.last_progress = time.monotonic() - 1000
    assert state.evaluate({TP}, {TP: 9}).healthy


def test_a_worker_stuck_on_its_first_batch_shows_the_batch_as_lag():
    """Its position already moved past the batch it fetched; the lag counts from the batch's first offset."""
    state = WorkerState("p", stall_after=10)
    state.fetched({TP: 5})                        # offsets 5..8 in hand, none applied
    state.last_progress = time.monotonic() - 11
    health = state.evaluate({TP}, {TP: 9}, positions={TP: 9})
    assert not health.healthy and health.details["lag"] == 4, health


def test_a_fetch_does_not_move_back_what_was_applied():
    state = WorkerState("p", stall_after=10)
    state.applied_offsets[TP] = 8
    state.fetched({TP: 3})                        # a redelivery after a rebalance
    assert state.applied_offsets[TP] == 8
