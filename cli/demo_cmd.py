"""`cdc demo`: writes a few customers and orders (state + outbox in one transaction) and shows
their change events arriving on Kafka, as Debezium captured them."""
from __future__ import annotations

import json
import time
import uuid

import psycopg
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.table import Table

from cli import stack_env
from schemas.envelope import ChangeEvent, MalformedEvent, Tombstone, parse_change
from schemas.outbox import parse_outbox

out = Console(width=120)
ROW_TOPICS = ["orders.public.customers", "orders.public.orders", "orders.public.order_items"]
OUTBOX_TOPICS = ["outbox.event.customer", "outbox.event.order"]


def _consumer_at_end(bootstrap: str, topics: list[str]) -> Consumer:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"demo-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    meta = consumer.list_topics(timeout=10)
    assignment = []
    for topic in topics:
        for p in meta.topics[topic].partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            assignment.append(TopicPartition(topic, p, high))
    consumer.assign(assignment)
    return consumer


def _new_id(conn: psycopg.Connection, query: str, params: tuple) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None, "INSERT ... RETURNING returned no row"
    return int(row[0])


def _write_sample_data(url: str, tag: str) -> int:
    """Register customers and place orders; each business change writes its outbox row in the same transaction."""
    writes = 0
    with psycopg.connect(url) as conn:
        for i, (name, country) in enumerate([("Ada Lovelace", "GB"), ("Grace Hopper", "US"), ("Rosalind Franklin", "GB")]):
            with conn.transaction():
                cid = _new_id(conn, "INSERT INTO customers (name, email, country, document_number, phone) "
                              "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                              (name, f"{tag}-{i}@example.org", country, f"DOC-{tag}-{i}", "+1-555-0100"))
                conn.execute("INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) "
                             "VALUES (gen_random_uuid(), 'customer', %s, 'CustomerRegistered', %s)",
                             (str(cid), json.dumps({"id": cid, "name": name})))
                oid = _new_id(conn, "INSERT INTO orders (customer_id, total) VALUES (%s, 42.50) RETURNING id", (cid,))
                conn.execute("INSERT INTO order_items (order_id, sku, quantity, unit_price) VALUES (%s, 'SKU-1', 1, 42.50)",
                             (oid,))
                conn.execute("INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) "
                             "VALUES (gen_random_uuid(), 'order', %s, 'OrderPlaced', %s)",
                             (str(oid), json.dumps({"order_id": oid, "customer_id": cid, "total": "42.50"})))
                writes += 5
            with conn.transaction():
                conn.execute("UPDATE customers SET address = %s, updated_at = now() WHERE id = %s",
                             (f"{i} Demo Street", cid))
                writes += 1
    return writes


def demo(timeout: float = 60.0) -> None:
    """Write sample customers and orders, then show their change events arriving on Kafka."""
    env = stack_env.load()
    consumer = _consumer_at_end(env["KAFKA_BOOTSTRAP_SERVERS"], ROW_TOPICS + OUTBOX_TOPICS)
    tag = uuid.uuid4().hex[:6]
    started = time.monotonic()
    expected = _write_sample_data(env["ORDERS_DATABASE_URL"], tag)
    out.print(f"wrote {expected} changes to the orders database (tag {tag}); waiting for their events ...")
    table = Table("topic", "key", "op / event type", "position (LSN)", "ms", title="captured change events")
    seen = 0
    try:
        while seen < expected and time.monotonic() - started < timeout:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            elapsed = f"{(time.monotonic() - started) * 1000:.0f}"
            try:
                if msg.topic() in OUTBOX_TOPICS:
                    event = parse_outbox(msg.key(), msg.value(), msg.headers())
                    table.add_row(msg.topic(), event.aggregate_id, event.event_type, "-", elapsed)
                    seen += 1
                    continue
                change = parse_change(msg.key(), msg.value())
            except MalformedEvent as exc:
                table.add_row(msg.topic(), str(msg.key()), f"[red]malformed: {exc}[/red]", "-", elapsed)
                continue
            if isinstance(change, Tombstone):
                continue
            assert isinstance(change, ChangeEvent)
            table.add_row(msg.topic(), json.dumps(change.row.get("id")), change.op, str(change.source.lsn), elapsed)
            seen += 1
    finally:
        consumer.close()
    out.print(table)
    if seen < expected:
        out.print(f"[red]only {seen} of {expected} events arrived within {timeout:.0f}s[/red]")
        raise SystemExit(1)
    out.print(f"[green]all {expected} changes captured[/green]: service DB -> Debezium -> Kafka")
    _show_replication(env, tag)
    from cli import demo_sagas

    demo_sagas.run(env, tag, out)


def _show_replication(env: dict[str, str], tag: str) -> None:
    """The workers (make workers) copy the customers into inventory, invoicing and shipping."""
    from cli.observe_cmd import _table
    from observe.replication import wait_converged
    from streams import spec as spec_mod

    pairs = list(spec_mod.load().pairs)
    with out.status("waiting for the replicas to converge"):
        reports = wait_converged(pairs, env, timeout=90)
    out.print(_table(reports))
    for pair in pairs:
        url = env[f"{pair.target.service.upper()}_DATABASE_URL"]
        with psycopg.connect(url) as conn:
            cur = conn.execute(f"SELECT * FROM {pair.target.table} ORDER BY orders_customer_id DESC LIMIT 1")
            cols = [d.name for d in cur.description or []]
            row = cur.fetchone()
        out.print(f"{pair.target.service}.{pair.target.table} (newest): {dict(zip(cols, row, strict=True)) if row else '-'}")
    if not all(r.converged for r in reports):
        out.print("[red]replication did not converge[/red]")
        raise SystemExit(1)
    out.print("[green]replicas converged[/green]: Kafka -> Faust workers -> inventory, invoicing, shipping "
              "(no document number or phone anywhere but orders)")
