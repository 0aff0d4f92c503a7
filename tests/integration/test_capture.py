"""Row changes and outbox events of a service database arrive on Kafka as Debezium events
that parse into the project's models."""
from __future__ import annotations

import psycopg
import pytest

from schemas.envelope import ChangeEvent, Tombstone, parse_change
from schemas.outbox import parse_outbox

pytestmark = pytest.mark.integration


def test_insert_update_delete_arrive_as_native_envelopes_without_private_columns(stack_env, reader, unique):
    topic = "orders.public.customers"
    r = reader(topic)
    with psycopg.connect(stack_env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
        cid = conn.execute("INSERT INTO customers (name, email, document_number, phone) VALUES (%s, %s, 'D-1', '555') "
                           "RETURNING id", (f"cust-{unique}", f"{unique}@example.org")).fetchone()[0]
        conn.execute("UPDATE customers SET name = %s WHERE id = %s", (f"renamed-{unique}", cid))
        conn.execute("DELETE FROM customers WHERE id = %s", (cid,))

    key = f'{{"id":{cid}}}'.encode()
    msgs = r.wait_for(lambda m: m.key() == key, count=4, timeout=60, expected=f"c, u, d and tombstone for id {cid}")
    parsed = [parse_change(m.key(), m.value()) for m in msgs[:4]]
    changes = [p for p in parsed if isinstance(p, ChangeEvent)]
    assert [c.op for c in changes] == ["c", "u", "d"]
    assert isinstance(parsed[3], Tombstone) and parsed[3].key == {"id": cid}
    assert changes[0].after["email"] == f"{unique}@example.org"
    assert changes[1].after["name"] == f"renamed-{unique}"
    assert changes[2].before["id"] == cid and changes[2].after is None
    # private columns of orders (declared in its domain) are not captured: not in Kafka, before or after
    images = [img for c in changes for img in (c.before, c.after) if img]
    assert images and all(not {"document_number", "phone"} & set(img) for img in images), images
    lsns = [c.source.lsn for c in changes]
    assert all(lsns) and lsns == sorted(lsns), f"positions must grow with each change: {lsns}"
    assert {c.source.table for c in changes} == {"customers"} and changes[0].source.name == "orders"
    # one key -> one partition, so a row's changes stay in order
    assert len({m.partition() for m in msgs[:4]}) == 1


def test_outbox_insert_is_routed_with_event_id_header(stack_env, reader, unique):
    r = reader("outbox.event.customer")
    with psycopg.connect(stack_env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
        event_id = conn.execute(
            "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) "
            "VALUES (gen_random_uuid(), 'customer', %s, 'CustomerRegistered', %s) RETURNING id",
            (unique, f'{{"tag": "{unique}"}}')).fetchone()[0]
    msgs = r.wait_for(lambda m: m.key() == f'"{unique}"'.encode(), count=1, timeout=60,
                      expected=f"outbox event with aggregate id {unique}")
    event = parse_outbox(msgs[0].key(), msgs[0].value(), msgs[0].headers())
    assert event.event_id == str(event_id)
    assert event.event_type == "CustomerRegistered"
    assert event.payload == {"tag": unique}
