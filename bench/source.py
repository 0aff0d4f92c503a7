"""The bench's backlog, made for real: N mixed changes (inserts, updates, deletes) committed to
a source table, then decoded twice — by PostgreSQL alone (`pg_logical_slot_get_binary_changes`
with pgoutput: the source ceiling) and by Debezium into a Kafka topic (JSON with schemas, which
the JDBC sink needs), the topic both sinks then drain."""
from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.databases import PUBLICATION, SOURCE_DB, BenchDatabases
from connectors import acls
from connectors.connect_api import ConnectClient
from stack.kafka_client import KafkaAccess
from stack.settings import HOST

PARTITIONS = 3
TABLE_DDL = f"""
CREATE TABLE customers (
    id           bigint PRIMARY KEY,
    name         text NOT NULL,
    email        text NOT NULL,
    country      text NOT NULL,
    credit_limit numeric(12,2) NOT NULL,
    version      int NOT NULL
);
CREATE PUBLICATION {PUBLICATION} FOR TABLE customers;
"""
# What a replica must hold at the end, the same text on every side.
FINGERPRINT = ("SELECT count(*), coalesce(sum({version}), 0), "
               "md5(coalesce(string_agg({id} || '|' || name || '|' || country || '|' || {version}, ',' ORDER BY {id}), ''))"
               " FROM {table}")


@dataclass(frozen=True)
class Backlog:
    inserts: int
    updates: int
    deletes: int
    seconds: float

    @property
    def changes(self) -> int:
        return self.inserts + self.updates + self.deletes


def create_table(db: BenchDatabases) -> None:
    with psycopg.connect(db.source_url, autocommit=True) as conn:
        conn.execute(TABLE_DDL)


def create_slots(db: BenchDatabases, names: list[str]) -> None:
    """Slots first: they hold the backlog's WAL until each reader decodes it."""
    with psycopg.connect(db.source_url, autocommit=True) as conn:
        for name in names:
            conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (name,))


def write_backlog(db: BenchDatabases, changes: int, chunk: int = 1000) -> Backlog:
    """50% inserts, 35% updates (each row at most once per pass), 15% deletes, 1,000 per transaction."""
    inserts, deletes = changes // 2, changes * 15 // 100
    updates = changes - inserts - deletes
    started = time.monotonic()
    with psycopg.connect(db.source_url, autocommit=True) as conn:
        for lo in range(1, inserts + 1, chunk):
            hi = min(inserts, lo + chunk - 1)
            conn.execute("INSERT INTO customers SELECT g, 'name-' || g, 'c' || g || '@example.org', "
                         "(ARRAY['ES','GB','US','FR'])[1 + g %% 4], 100 + g %% 900, 0 "
                         "FROM generate_series(%s::bigint, %s::bigint) g", (lo, hi))
        done = 0
        while done < updates:
            lo = 1 + done % inserts
            hi = min(inserts, lo + min(chunk, updates - done) - 1)
            conn.execute("UPDATE customers SET version = version + 1, name = 'name-' || id || '-v' || (version + 1), "
                         "country = (ARRAY['ES','GB','US','FR'])[1 + (id + version + 1) %% 4] "
                         "WHERE id BETWEEN %s AND %s", (lo, hi))
            done += hi - lo + 1
        for lo in range(inserts - deletes + 1, inserts + 1, chunk):
            conn.execute("DELETE FROM customers WHERE id BETWEEN %s AND %s", (lo, min(inserts, lo + chunk - 1)))
    return Backlog(inserts, updates, deletes, time.monotonic() - started)


def source_fingerprint(db: BenchDatabases) -> tuple[int, int, str]:
    with psycopg.connect(db.source_url) as conn:
        row = conn.execute(FINGERPRINT.format(id="id", version="version", table="customers")).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def decode_ceiling(db: BenchDatabases, slot: str) -> tuple[int, float]:
    """PostgreSQL's own logical decoding of the backlog (pgoutput, as Debezium uses it): messages, seconds."""
    with psycopg.connect(db.source_url, autocommit=True) as conn:
        started = time.monotonic()
        row = conn.execute("SELECT count(*) FROM pg_logical_slot_get_binary_changes(%s, NULL, NULL, "
                           "'proto_version', '1', 'publication_names', %s)", (slot, PUBLICATION)).fetchone()
        seconds = time.monotonic() - started
    assert row is not None
    return row[0], seconds


def capture_config(db: BenchDatabases, topic: str, slot: str) -> dict[str, str]:
    """Debezium's PostgreSQL connector as the stack runs it, with schemas in the JSON (the JDBC
    sink needs them). Its logical name is `orders`, as the events of orders.customers carry (our
    worker checks it), and its topic is routed to a bench topic. The password is the bench
    role's, new at every bench."""
    return {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "plugin.name": "pgoutput", "tasks.max": "1",
        "database.hostname": HOST, "database.port": str(db.settings.pg_ports["orders"]),
        "database.user": "cdc_bench", "database.password": db.password, "database.dbname": SOURCE_DB,
        "topic.prefix": "orders", "table.include.list": "public.customers",
        "transforms": "route", "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
        "transforms.route.regex": r"orders\.public\.customers", "transforms.route.replacement": topic,
        "slot.name": slot, "publication.name": PUBLICATION, "publication.autocreate.mode": "disabled",
        "snapshot.mode": "no_data", "poll.interval.ms": "100", "decimal.handling.mode": "string",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter", "key.converter.schemas.enable": "true",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "true",
    }


def capture(db: BenchDatabases, connect_url: str, kafka: KafkaAccess, topic: str, slot: str, expected: int,
            timeout: float = 600) -> float:
    """Debezium captures the backlog into `topic`: changes/s, from the first to the last
    record's timestamp (connector start-up not counted)."""
    create_capture_topic(kafka, topic)
    client = ConnectClient(connect_url)
    name = f"capture-{topic}"
    try:
        client.put_config(name, capture_config(db, topic, slot))
        deadline = time.monotonic() + timeout
        while (size := topic_size(kafka, topic)) < expected:
            if time.monotonic() > deadline:
                raise SystemExit(f"Debezium captured {size}/{expected} messages in {timeout:.0f}s; see the Connect log")
            if (state := client.status(name)).failed:
                raise SystemExit(f"the bench capture {name} failed after {size}/{expected} messages: "
                                 f"{(state.trace or '')[-600:]}")
            time.sleep(0.2)
    finally:
        client.delete(name)
        client.close()
    first, last = _timestamps(kafka, topic)
    return expected / max(0.001, (last - first) / 1000)


def create_capture_topic(kafka: KafkaAccess, topic: str) -> None:
    """The bench topic, and the right of the stack's Connect principal to write it: Connect may
    write only the declared connectors' topics (connectors/acls.py). The grant is left in place
    (idempotent; `make up` removes it as stale)."""
    admin = AdminClient(kafka.config())  # held until the future resolves
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)], operation_timeout=30)[topic].result()
    acls.grant(kafka, acls.connect_grants([topic], []))


def topic_size(kafka: KafkaAccess, topic: str) -> int:
    consumer = Consumer(kafka.config(**{"group.id": "cdc-bench-probe", "enable.auto.commit": False}))
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(PARTITIONS))
    finally:
        consumer.close()


def _timestamps(kafka: KafkaAccess, topic: str) -> tuple[int, int]:
    """Smallest first and largest last record timestamp over the partitions (ms)."""
    consumer = Consumer(kafka.config(**{"group.id": "cdc-bench-probe", "enable.auto.commit": False}))
    firsts: list[int] = []
    lasts: list[int] = []
    try:
        for p in range(PARTITIONS):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high <= low:
                continue
            for offset, into in ((low, firsts), (high - 1, lasts)):
                consumer.assign([TopicPartition(topic, p, offset)])
                msg = consumer.poll(10)
                if msg is None or msg.error():
                    raise SystemExit(f"cannot read {topic}[{p}]@{offset}: {msg.error() if msg else 'timeout'}")
                into.append(msg.timestamp()[1])
    finally:
        consumer.close()
    return min(firsts), max(lasts)
