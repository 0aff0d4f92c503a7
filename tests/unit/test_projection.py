"""Projection of change events to replica rows, last-write-wins and the position guard."""
from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from schemas.envelope import MalformedEvent, parse_change
from streams import spec as spec_mod
from streams.projection import ReplicaRow, SchemaChanged, latest_per_key, project, should_apply

SAMPLES = Path(__file__).parent / "samples"
SPEC = spec_mod.load()
INVOICING = SPEC.pair("customers-to-invoicing")


def _event(name: str, **source_changes):
    doc = json.loads((SAMPLES / name).read_text())
    doc["value"]["source"].update(source_changes)
    return parse_change(doc["key"].encode(), orjson.dumps(doc["value"]))


def test_insert_keeps_only_listed_columns_renamed():
    row = project(INVOICING, _event("customer_insert.json"))
    assert row.key == (1,)
    assert dict(zip(INVOICING.columns.values(), row.values, strict=True)) == {
        "legal_name": "Ada", "email": "ada@x.org", "billing_address": None, "country": "ES"}
    assert "X1" not in row.values and "555" not in row.values  # document number, phone
    assert not row.deleted and row.position > 0


def test_delete_carries_no_data_only_key_and_position():
    row = project(INVOICING, _event("customer_delete.json"))
    assert row.deleted and row.key == (1,) and set(row.values) == {None}


def test_incremental_snapshot_read_takes_its_position_from_the_sequence():
    event = _event("customer_incremental_snapshot_read.json")
    assert event.source.lsn is None and event.source.snapshot == "incremental"
    row = project(INVOICING, event)
    assert row.position == max(int(v) for v in json.loads(event.source.sequence))
    assert row.commit_lsn == -1, "a snapshot read: fills a missing row only"


def test_streamed_change_takes_its_commit_order_from_the_sequence():
    event = _event("customer_insert.json")
    row = project(INVOICING, event)
    assert row.commit_lsn == int(json.loads(event.source.sequence)[0]) > 0


@pytest.mark.parametrize("source_changes, reason", [
    ({"table": "orders"}, "topic of"),
    ({"lsn": None}, "source.lsn"),
])
def test_unappliable_events_are_malformed(source_changes, reason):
    with pytest.raises(MalformedEvent, match=reason):
        project(INVOICING, _event("customer_update.json", **source_changes))


def test_a_replicated_column_missing_from_a_change_is_a_schema_change_naming_pair_and_column():
    event = _event("customer_update.json")
    event.after["contact_email"] = event.after.pop("email")  # renamed at the source
    with pytest.raises(SchemaChanged, match=r"pair customers-to-invoicing: .*column\(s\) email .*contact_email"):
        project(INVOICING, event)


@pytest.mark.parametrize("placeholder", ["__debezium_unavailable_value", "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="])
def test_debeziums_unavailable_value_placeholder_never_reaches_a_replica(placeholder):
    event = _event("customer_update.json")
    event.after["email"] = placeholder
    with pytest.raises(MalformedEvent, match="REPLICA IDENTITY FULL"):
        project(INVOICING, event)


def _row(key: int, pos: int, deleted: bool = False) -> ReplicaRow:
    return ReplicaRow((key,), (f"v{pos}",), pos, deleted, 0)


def test_latest_per_key_keeps_the_highest_position_whatever_the_order():
    rows = [_row(1, 10), _row(2, 5), _row(1, 30), _row(1, 20, deleted=True), _row(2, 7, deleted=True)]
    newest = {r.key: r for r in latest_per_key(rows)}
    assert newest[(1,)].position == 30 and not newest[(1,)].deleted
    assert newest[(2,)].position == 7 and newest[(2,)].deleted


@pytest.mark.parametrize("existing, incoming, applies", [
    (None, 5, True), ((0, 4), 5, True), ((0, 5), 5, False), ((0, 6), 5, False),
])
def test_position_guard_applies_only_strictly_newer(existing, incoming, applies):
    assert should_apply(existing, _row(1, incoming)) is applies


def test_commit_order_beats_change_lsn_across_a_snapshot_read():
    """A transaction open while a snapshot read was stamped: its change has a lower LSN than the
    read's position but committed later, and must win; a read never replaces a row."""
    read = ReplicaRow((1,), ("old",), 130, False, 0, commit_lsn=-1)
    late_txn = ReplicaRow((1,), ("new",), 100, False, 0, commit_lsn=140)
    assert should_apply(read.order_key, late_txn)
    assert not should_apply(late_txn.order_key, read)
    assert latest_per_key([late_txn, read]) == [late_txn]
    assert should_apply(None, read), "a read fills a missing row"


def test_streamed_changes_are_ordered_by_last_commit_then_lsn():
    first = ReplicaRow((1,), ("a",), 500, False, 0, commit_lsn=100)
    second = ReplicaRow((1,), ("b",), 450, False, 0, commit_lsn=600)  # later transaction, lower change LSN
    assert latest_per_key([second, first]) == [second] and should_apply(first.order_key, second)


def test_replay_of_a_whole_history_converges_to_the_same_state():
    """Applying the history in any redelivered order (guard per key) ends in the newest state."""
    history = [_row(1, 1), _row(1, 2), _row(2, 3), _row(1, 4, deleted=True), _row(2, 5)]
    replica: dict = {}
    for batch in (history, history[::-1], history[2:] + history[:2]):
        for row in latest_per_key(batch):
            if should_apply(replica.get(row.key, (None, None))[0], row):
                replica[row.key] = (row.order_key, row.deleted)
    assert replica == {(1,): ((0, 4), True), (2,): ((0, 5), False)}


def _from(system_id: str | None) -> ReplicaRow:
    return ReplicaRow((1,), ("v",), 10, False, 0, None, system_id)


@pytest.mark.parametrize("recorded, seen, problem", [
    (None, [None], None),
    (None, ["A"], None),
    ("A", ["A", None, "unknown"], None),
    ("A", ["B"], "rebuilt"),
    (None, ["A", "B"], "several source clusters"),
])
def test_source_identity(recorded, seen, problem):
    from streams.projection import source_identity_problem

    found = source_identity_problem(recorded, [_from(s) for s in seen])
    assert (found is None) if problem is None else (problem in found)


def test_connector_stamp_is_parsed():
    event = _event("customer_insert.json")
    assert event.source_system_id is None
    doc = json.loads((SAMPLES / "customer_insert.json").read_text())
    doc["value"]["source_system_id"] = "7311"
    stamped = parse_change(doc["key"].encode(), orjson.dumps(doc["value"]))
    assert project(INVOICING, stamped).source_system_id == "7311"
