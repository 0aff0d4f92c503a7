"""The purge of expired delete markers without a database: which pairs have markers to purge,
the batch statement, and a run's batches and counts."""
from __future__ import annotations

import asyncio

import pytest
from psycopg import sql

from streams import spec as spec_mod
from streams.purge import MarkerPurge, purge_sql, purges_markers

SPEC = spec_mod.load()
DELETE_PAIR = SPEC.pair("customers-to-inventory")
SOFT_PAIR = SPEC.pair("customers-to-invoicing")


class FakeCursor:
    def __init__(self, rowcount: int) -> None:
        self.rowcount = rowcount


class FakeConn:
    """Answers each DELETE with the next row count."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = counts
        self.params: list[dict] = []

    async def execute(self, query: sql.Composed, params: dict) -> FakeCursor:
        self.params.append(params)
        return FakeCursor(self.counts.pop(0))


def test_only_pairs_whose_deletes_leave_markers_are_purged():
    assert purges_markers(DELETE_PAIR)
    assert not purges_markers(SOFT_PAIR), "a soft delete keeps the row's data for readers"
    with pytest.raises(ValueError, match="keeps deleted rows"):
        MarkerPurge(SOFT_PAIR)


def test_the_batch_deletes_only_expired_markers_and_rechecks_them_outside_the_subquery():
    text = repr(purge_sql(DELETE_PAIR))
    assert "customers_replica" in text
    assert text.count("cdc_deleted AND cdc_applied_at < now() - make_interval(secs => %(keep)s)") == 2
    assert "LIMIT %(batch)s" in text


def test_a_topic_that_keeps_messages_forever_purges_nothing():
    purge, conn = MarkerPurge(DELETE_PAIR, keep_s=None), FakeConn([])
    assert asyncio.run(purge.run(conn)) == 0  # type: ignore[arg-type]
    assert conn.params == [] and purge.runs == 1 and purge.last_run is not None
    assert purge.stats()["keep_s"] is None


def test_batches_go_on_until_one_is_not_full_and_every_batch_is_counted():
    purge, conn = MarkerPurge(DELETE_PAIR, keep_s=86_402.0, batch=10), FakeConn([10, 10, 3, 99])
    assert asyncio.run(purge.run(conn)) == 23  # type: ignore[arg-type]
    assert conn.params == [{"keep": 86_402.0, "batch": 10}] * 3
    assert asyncio.run(purge.run(FakeConn([0]))) == 0  # type: ignore[arg-type]
    assert purge.stats()["markers_purged"] == 23 and purge.stats()["runs"] == 2
