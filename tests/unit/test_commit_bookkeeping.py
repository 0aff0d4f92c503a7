"""Faust's ack bookkeeping after a seek (streams/commit_bookkeeping.py): the pure parts."""
from __future__ import annotations

from collections import defaultdict

from faust.types import TP

from streams.commit_bookkeeping import deduplicated, forget_acks, lost_holes

A, B = TP("clicks", 0), TP("clicks", 1)


def test_a_repeated_offset_no_longer_ends_the_run_faust_commits():
    from faust.utils.functional import consecutive_numbers

    acked = [307, 308, 308, 309, 309, 310]
    assert next(consecutive_numbers(sorted(acked))) == [307, 308], "Faust's run stops at the repeat"
    deduplicated(acked)
    assert acked == [307, 308, 309, 310]
    assert next(consecutive_numbers(acked)) == [307, 308, 309, 310]


def test_a_seek_forgets_only_the_sought_partitions_acks():
    acked, index = defaultdict(list, {A: [5, 6], B: [9]}), defaultdict(set, {A: {5, 6}, B: {9}})
    forget_acks(acked, index, [A])
    assert A not in acked and A not in index
    assert acked[B] == [9] and index[B] == {9}


def test_a_hole_no_message_in_flight_can_fill_is_lost():
    assert lost_holes({A: 161}, {A: [166, 167]}, {}) == {A: 161}


def test_a_hole_whose_message_is_still_being_processed_is_not_lost():
    assert lost_holes({A: 161}, {A: [166, 167]}, {A: {163}}) == {}
    # a message in flight outside the hole does not fill it
    assert lost_holes({A: 161}, {A: [166, 167]}, {A: {170}}) == {A: 161}


def test_acks_that_start_at_the_committed_offset_leave_no_hole():
    assert lost_holes({A: 161, B: 10}, {A: [161, 162], B: []}, {}) == {}
    assert lost_holes({A: None}, {A: [5, 6]}, {}) == {}, "nothing committed yet: Faust commits from the first ack"


def test_a_refilled_hole_is_counted_in_the_workers_metrics():
    from prometheus_client import generate_latest

    from streams.commit_bookkeeping import HOLE_LISTENERS
    from streams.health import WorkerState

    state = WorkerState("link-clicks")
    assert b'cdc_replication_commit_holes_refilled_total{pair="link-clicks"} 0.0' in generate_latest(state.registry)
    for listener in list(HOLE_LISTENERS):
        listener(A)
    assert b'cdc_replication_commit_holes_refilled_total{pair="link-clicks"} 1.0' in generate_latest(state.registry)
