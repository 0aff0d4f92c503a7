"""Which outbox rows are safe to purge: only those committed before a WAL mark the
connector's slot has confirmed."""
from __future__ import annotations

from collections import deque
from datetime import UTC, datetime

from streams.sagas.retention import lsn, purge_horizon

T = [datetime(2026, 11, 23, 12, 0, s, tzinfo=UTC) for s in range(4)]


def test_lsn_orders_like_postgres():
    assert lsn("0/16B3748") < lsn("0/16B3749") < lsn("1/0") < lsn("A/0")


def test_nothing_is_safe_before_the_slot_confirms_a_mark():
    marks = deque([(100, T[0]), (200, T[1])])
    assert purge_horizon(marks, None) is None
    assert purge_horizon(marks, 99) is None
    assert list(marks) == [(100, T[0]), (200, T[1])]


def test_the_newest_confirmed_mark_is_the_horizon_and_stays_until_a_newer_one_is_confirmed():
    marks = deque([(100, T[0]), (200, T[1]), (300, T[2])])
    assert purge_horizon(marks, 250) == T[1]
    assert purge_horizon(marks, 250) == T[1], "a batch-limited purge goes on with the same horizon"
    marks.append((400, T[3]))
    assert purge_horizon(marks, 1_000) == T[3]
    assert len(marks) == 1


def test_a_mode_switch_starts_where_the_other_mode_stopped_never_earlier():
    from streams.sagas.handover import handed_over

    assert handed_over({0: 5, 1: 7, 2: -1}, {0: 9, 1: 3, 2: 4}) == {0: 9, 2: 4}
    assert handed_over({0: 5}, {0: -1}) == {}, "the other mode never read it: nothing to hand over"
