"""Faust's ack bookkeeping after a seek (streams/commit_bookkeeping.py): the pure parts."""
from __future__ import annotations

from collections import defaultdict

from faust.types import TP

from streams.commit_bookkeeping import deduplicated, forget_acks, lost_holes

A, B = TP("clicks", 0), TP("clicks", 1)
NO_GAPS = lambda tp, a, b: False  # noqa: E731


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
    assert lost_holes({A: 161}, {A: [166, 167]}, {}, NO_GAPS) == {A: 161}


def test_a_hole_whose_message_is_still_being_processed_is_not_lost():
    assert lost_holes({A: 161}, {A: [166, 167]}, {A: {163}}, NO_GAPS) == {}
    # a message in flight outside the hole does not fill it
    assert lost_holes({A: 161}, {A: [166, 167]}, {A: {170}}, NO_GAPS) == {A: 161}


def test_acks_that_start_at_the_committed_offset_leave_no_hole():
    assert lost_holes({A: 161, B: 10}, {A: [161, 162], B: []}, {}, NO_GAPS) == {}
    assert lost_holes({A: None}, {A: [5, 6]}, {}, NO_GAPS) == {}, "nothing committed yet: Faust commits from the first ack"


def test_a_refilled_hole_is_counted_in_the_workers_metrics():
    from prometheus_client import generate_latest

    from streams.commit_bookkeeping import HOLE_LISTENERS
    from streams.health import WorkerState

    state = WorkerState("link-clicks")
    assert b'cdc_replication_commit_holes_refilled_total{pair="link-clicks"} 0.0' in generate_latest(state.registry)
    for listener in list(HOLE_LISTENERS):
        listener(A)
    assert b'cdc_replication_commit_holes_refilled_total{pair="link-clicks"} 1.0' in generate_latest(state.registry)


def test_a_hole_at_the_head_is_an_offset_neither_acked_nor_a_known_gap():
    from streams.commit_bookkeeping import head_hole

    nothing = lambda a, b: False  # noqa: E731
    assert head_hole(161, [162, 163], nothing), "161 is neither acked nor a gap"
    assert not head_hole(161, [161, 162], nothing)
    assert not head_hole(161, [162, 163], lambda a, b: (a, b) == (161, 162)), "a known gap (compaction) may be passed"
    assert not head_hole(None, [5], nothing)


def test_a_hole_that_is_a_known_gap_is_not_sought_back():
    assert lost_holes({A: 161}, {A: [166]}, {}, lambda tp, a, b: True) == {}


def test_a_read_model_batch_that_jumps_past_an_undelivered_message_is_refused():
    from streams.deadletter import RawMessage
    from streams.read_models.batch import skipped_ahead

    def batch(*offsets):
        return [RawMessage("clicks", 1, o, b"k", b"v", (), None) for o in offsets]

    seen: dict = {}
    assert skipped_ahead(batch(100, 101, 102), seen) is None
    assert skipped_ahead(batch(103, 104, 104), seen) is None, "a repeat is harmless"
    assert skipped_ahead(batch(100, 101), seen) is None, "a seek back is harmless"
    assert skipped_ahead(batch(105, 108), seen) == "clicks:1 delivered offset 108 while 106 was never delivered"


def test_a_new_actor_whose_first_message_is_past_the_group_offset_is_refused():
    """The head of a partition: Faust commits over one message lost there (faust-streaming #606)."""
    import asyncio

    from streams.deadletter import RawMessage
    from streams.read_models.batch import expect_first, skipped_ahead

    def batch(*offsets):
        return [RawMessage("clicks", 1, o, b"k", b"v", (), None) for o in offsets]

    asked: list = []

    async def committed_at_100(tp):
        asked.append(tp)
        return 100

    async def broker_away(tp):
        raise OSError("broker transport failure")

    seen: dict = {}
    asyncio.run(expect_first(batch(101, 102), seen, committed_at_100, "m"))
    assert skipped_ahead(batch(101, 102), seen) == "clicks:1 delivered offset 101 while 100 was never delivered"
    started: dict = {}
    asyncio.run(expect_first(batch(100, 101), started, committed_at_100, "m"))
    asyncio.run(expect_first(batch(102), started, committed_at_100, "m"))
    assert asked == [("clicks", 1)] * 2, "asked once per actor and partition, not per batch"
    assert skipped_ahead(batch(100, 101), started) is None
    unknown: dict = {}
    asyncio.run(expect_first(batch(101), unknown, broker_away, "m"))
    assert skipped_ahead(batch(101), unknown) is None, "without the group offset the start is not checked"
