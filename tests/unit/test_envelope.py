"""Parsing captured real Debezium events (tests/unit/samples) into the envelope models."""
from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from schemas.envelope import ChangeEvent, MalformedEvent, Tombstone, parse_change, parse_key
from schemas.outbox import parse_outbox

SAMPLES = Path(__file__).parent / "samples"


def _raw(name: str) -> tuple[bytes, bytes | None]:
    doc = json.loads((SAMPLES / name).read_text())
    value = None if doc["value"] is None else orjson.dumps(doc["value"])
    return doc["key"].encode(), value


@pytest.mark.parametrize("name, op", [("customer_insert.json", "c"), ("customer_update.json", "u"),
                                      ("customer_delete.json", "d")])
def test_captured_events_parse(name, op):
    event = parse_change(*_raw(name))
    assert isinstance(event, ChangeEvent)
    assert event.op == op
    assert event.source.table == "customers" and event.source.name == "orders"
    assert event.source.lsn and event.source.lsn > 0
    assert event.row["id"] == 1


def test_delete_row_is_the_before_image_and_flagged():
    event = parse_change(*_raw("customer_delete.json"))
    assert event.is_delete and event.after is None and event.row is event.before


def test_tombstone_keeps_the_key():
    event = parse_change(*_raw("customer_tombstone.json"))
    assert isinstance(event, Tombstone) and event.key == {"id": 1}


def test_schema_wrapped_payload_is_tolerated():
    key, value = _raw("customer_insert.json")
    wrapped = orjson.dumps({"schema": {"type": "struct"}, "payload": orjson.loads(value)})
    wrapped_key = orjson.dumps({"schema": {"type": "struct"}, "payload": orjson.loads(key)})
    assert parse_change(key, wrapped).op == "c"
    assert parse_key(wrapped_key) == orjson.loads(key)  # keys come wrapped too (the JDBC sink's format)


@pytest.mark.parametrize("key, value, reason", [
    (None, b"{}", "no key"),
    (b"not json", b"{}", "key is not JSON"),
    (b"[1]", b"{}", "key is not an object"),
    (b'{"id": 1}', b"{oops", "value is not JSON"),
    (b'{"id": 1}', b'{"op": "c", "after": {}}', "source"),
    (b'{"id": 1}', b'{"op": "x", "after": {}, "source": {}}', "not a Debezium change event"),
])
def test_malformed_events_say_why(key, value, reason):
    with pytest.raises(MalformedEvent, match=reason):
        parse_change(key, value)


def test_update_without_after_is_malformed():
    key, value = _raw("customer_update.json")
    doc = orjson.loads(value)
    doc["after"] = None
    with pytest.raises(MalformedEvent, match="without after"):
        _ = parse_change(key, orjson.dumps(doc)).row


def test_outbox_message_parses_headers_key_and_payload():
    doc = json.loads((SAMPLES / "outbox_customer_registered.json").read_text())
    headers = [(k, v.encode()) for k, v in doc["headers"].items()]
    msg = parse_outbox(doc["key"].encode(), orjson.dumps(doc["value"]), headers)
    assert msg.event_type == "CustomerRegistered" and msg.aggregate_id == "1"
    assert msg.event_id == doc["headers"]["id"] and msg.payload == doc["value"]


def test_outbox_message_without_event_id_is_malformed():
    with pytest.raises(MalformedEvent, match="'id' header"):
        parse_outbox(b'"1"', b"{}", [("eventType", b"X")])
