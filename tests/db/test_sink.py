"""The replication sink's SQL against a real target database migrated as the service's own: the
guarded upsert, delete markers, the reader views, the row-by-row fallback and the classification
of a wrong deployment. The batch loop (PairReplicator) runs with the real sink; only the
dead-letter topic is a fake."""
from __future__ import annotations

import asyncio

import psycopg
import pytest

from streams import spec
from streams.deadletter import DeadLetter, RawMessage
from streams.errors import ErrorKind, classify
from streams.replicator import BatchOutcome, FatalApplyError, PairReplicator
from streams.sink import ReplicaSink, SinkSchemaError
from tests.db.changes import change

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]

DELETE_PAIR = spec.load_enabled().pair("customers-to-inventory")  # delete_policy: delete
SOFT_PAIR = spec.load_enabled().pair("customers-to-invoicing")    # delete_policy: soft_delete


class CollectedDeadLetters:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def publish(self, letters: list[DeadLetter]) -> None:
        self.letters.extend(letters)


def replicate(dsn: str, pair, *batches: list[RawMessage]) -> tuple[list[BatchOutcome], CollectedDeadLetters]:
    """Each batch through the worker's loop body and the real sink, as one worker would in turn."""
    dlq = CollectedDeadLetters()

    async def run() -> list[BatchOutcome]:
        sink = ReplicaSink(pair, dsn)
        try:
            replicator = PairReplicator(pair, sink, dlq)
            return [await replicator.process(batch) for batch in batches]
        finally:
            await sink.close()

    return asyncio.run(run()), dlq


def rows(dsn: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def test_a_newer_change_replaces_the_row_and_an_older_one_changes_nothing(fresh_db):
    # rule: the upsert applies a change only if it is newer in commit order than the stored one
    dsn = fresh_db("inventory")
    outcomes, _ = replicate(dsn, DELETE_PAIR,
                            [change(DELETE_PAIR, 1, lsn=200, name="second")],
                            [change(DELETE_PAIR, 1, lsn=100, op="u", name="first")],   # older, replayed late
                            [change(DELETE_PAIR, 1, lsn=300, op="u", name="third")])
    assert [o.applied for o in outcomes] == [1, 0, 1], "the older change must change nothing"
    assert rows(dsn, "SELECT orders_customer_id, name, cdc_position FROM customers_replica") == [(1, "third", 300)]


def test_a_delete_leaves_a_marker_that_an_older_replayed_insert_cannot_resurrect(fresh_db):
    # rule: a delete is stored as a marker with its position, so older changes lose against it
    dsn = fresh_db("inventory")
    outcomes, _ = replicate(dsn, DELETE_PAIR,
                            [change(DELETE_PAIR, 7, lsn=100, name="Ada")],
                            [change(DELETE_PAIR, 7, lsn=200, op="d")],
                            [change(DELETE_PAIR, 7, lsn=100, name="Ada")],           # the insert, redelivered
                            [change(DELETE_PAIR, 7, lsn=50, op="r", name="Ada")])    # a late snapshot read
    assert [o.applied for o in outcomes] == [1, 1, 0, 0]
    assert rows(dsn, "SELECT cdc_deleted, cdc_position FROM customers_replica WHERE orders_customer_id = 7") \
        == [(True, 200)], "the marker stays, with the delete's position"


def test_the_view_hides_markers_of_delete_pairs_and_flags_soft_deleted_rows(fresh_db):
    # rule: readers of a `delete` pair never see deleted rows; a `soft_delete` pair keeps the last
    # data and shows `deleted`
    inventory, invoicing = fresh_db("inventory"), fresh_db("invoicing")
    for dsn, pair in ((inventory, DELETE_PAIR), (invoicing, SOFT_PAIR)):
        replicate(dsn, pair, [change(pair, 1, lsn=100, name="Gone"), change(pair, 2, lsn=110, name="Kept")],
                  [change(pair, 1, lsn=200, op="d")])
    assert rows(inventory, "SELECT orders_customer_id, name FROM customers ORDER BY 1") == [(2, "Kept")]
    assert rows(inventory, "SELECT count(*) FROM customers_replica WHERE cdc_deleted") == [(1,)]
    assert rows(invoicing, "SELECT orders_customer_id, legal_name, deleted FROM customers ORDER BY 1") \
        == [(1, "Gone", True), (2, "Kept", False)], "the soft-deleted row keeps its last data"


def test_a_row_the_target_rejects_is_dead_lettered_alone_and_the_rest_applied(fresh_db):
    # rule: a batch the target refuses is re-applied row by row in savepoints; only the bad row is
    # dead-lettered, with the database's reason
    dsn = fresh_db("inventory")
    with psycopg.connect(dsn) as conn:  # a rule only this test database has
        conn.execute("ALTER TABLE customers_replica ADD CONSTRAINT no_rejects CHECK (name <> 'reject me')")
    bad = change(DELETE_PAIR, 2, lsn=120, offset=1, name="reject me")
    outcomes, dlq = replicate(dsn, DELETE_PAIR, [change(DELETE_PAIR, 1, lsn=110, offset=0, name="Ada"), bad,
                                                 change(DELETE_PAIR, 3, lsn=130, offset=2, name="Grace")])
    assert outcomes[0].applied == 2
    assert [(d.message.offset, d.reason.split(":")[0]) for d in dlq.letters] \
        == [(1, "rejected by inventory")], "only the rejected row is dead-lettered"
    assert "CheckViolation" in dlq.letters[0].reason and "no_rejects" in dlq.letters[0].reason
    assert rows(dsn, "SELECT orders_customer_id FROM customers ORDER BY 1") == [(1,), (3,)]


@pytest.mark.parametrize("breakage", [
    "ALTER TABLE customers_replica DROP COLUMN country CASCADE",  # the view depends on it
    "DROP TABLE customers_replica CASCADE",
])
def test_a_missing_replica_table_or_column_is_a_wrong_deployment(fresh_db, breakage):
    # rule: a replica that lacks what the spec needs stops the worker (exit 70, nothing acknowledged)
    # instead of dead-lettering every row: the sink raises SinkSchemaError, classified FATAL, and the
    # loop raises FatalApplyError, which the worker turns into exit 70 (streams/app.py)
    dsn = fresh_db("inventory")
    with psycopg.connect(dsn) as conn:
        conn.execute(breakage)
    msg = change(DELETE_PAIR, 1, lsn=100, name="Ada")

    async def apply_directly() -> BaseException:
        sink = ReplicaSink(DELETE_PAIR, dsn)
        try:
            await sink.apply([])
        except Exception as exc:  # noqa: BLE001 - returned to be classified
            return exc
        finally:
            await sink.close()
        raise AssertionError("the sink accepted a replica that lacks the spec's columns")

    exc = asyncio.run(apply_directly())
    assert isinstance(exc, SinkSchemaError) and classify(exc) is ErrorKind.FATAL
    with pytest.raises(FatalApplyError, match="lacks columns"):
        replicate(dsn, DELETE_PAIR, [msg])


def test_a_backfill_fills_a_column_added_to_the_pair_on_older_rows_and_nothing_else(fresh_db):
    # rule: a snapshot read never replaces a row; on a row written before the pair listed a column
    # it sets exactly that column, once, and only if it was read after the row's change
    dsn = fresh_db("inventory")
    outcomes, _ = replicate(dsn, DELETE_PAIR, [
        change(DELETE_PAIR, 1, lsn=100, name="Ada", email="ada@old.org"),
        change(DELETE_PAIR, 2, lsn=110, name="Bo", email="bo@old.org"),
        change(DELETE_PAIR, 3, lsn=105, name="Cy"), change(DELETE_PAIR, 3, lsn=115, op="d")])
    assert outcomes[0].applied == 3
    with psycopg.connect(dsn) as conn:  # the column added to the replica, then to the pair
        conn.execute("ALTER TABLE customers_replica ADD COLUMN email text")
    with_email = DELETE_PAIR.model_copy(update={"columns": {**DELETE_PAIR.columns, "email": "email"}})
    outcomes, _ = replicate(dsn, with_email,
                            [change(with_email, 1, lsn=300, op="r", name="Not a replacement", email="ada@new.org"),
                             change(with_email, 2, lsn=50, op="r", name="Bo", email="bo@older.org"),  # read before its change
                             change(with_email, 3, lsn=300, op="r", name="Cy", email="cy@x.org")],   # a marker stays one
                            [change(with_email, 1, lsn=250, op="r", name="Ada", email="ada@replayed.org")],
                            [change(with_email, 2, lsn=400, op="u", name="Bo", email="bo@new.org")])
    assert [o.applied for o in outcomes] == [1, 0, 1], "one fill, no second fill by a replayed read, one change"
    assert rows(dsn, "SELECT orders_customer_id, name, email, cdc_position, cdc_deleted, cdc_generation "
                     "FROM customers_replica ORDER BY 1") == [
        (1, "Ada", "ada@new.org", 100, False, 2),   # only the new column; the row keeps its position
        (2, "Bo", "bo@new.org", 400, False, 2),
        (3, None, None, 115, True, 1)]  # a delete pair's marker holds no data
    assert rows(dsn, "SELECT generation, columns FROM cdc_replica_generations WHERE pair = %s ORDER BY 1",
                (DELETE_PAIR.name,)) == [(1, ["name", "country"]), (2, ["name", "country", "email"])]


def test_without_a_column_change_a_snapshot_read_of_an_existing_row_changes_nothing(fresh_db):
    dsn = fresh_db("inventory")
    outcomes, _ = replicate(dsn, DELETE_PAIR, [change(DELETE_PAIR, 1, lsn=100, name="Ada")],
                            [change(DELETE_PAIR, 1, lsn=300, op="r", name="Read later")])
    assert [o.applied for o in outcomes] == [1, 0]
    assert rows(dsn, "SELECT name, cdc_generation FROM customers_replica") == [("Ada", 1)]
