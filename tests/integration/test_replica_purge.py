"""Delete markers are purged once the source topic can no longer redeliver an older change of
their row (its retention plus a day), by the real replication worker on a real replica table;
live rows and fresh markers stay, and a topic that keeps messages forever keeps them forever.

Each test runs a test-only pair (its own spec file, replica table and source topic, so the shared
topics' retention is never touched): real change events of orders.customers rows the test makes
are copied into the pair's topic, the worker applies them, then some markers are aged by moving
their cdc_applied_at back two days (a day is the margin; waiting it out is not a test)."""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from cdc_testing.polling import poll
from cdc_testing.workers import WorkerProcess, diagnose
from connectors import acls
from services.db import replicas
from stack.kafka_client import ADMIN, access
from stack.secrets import new_password
from streams import spec as spec_mod
from streams.spec import ReplicationPair
from streams.topic_retention import REDELIVERY_MARGIN_S

pytestmark = pytest.mark.integration
SOURCE_TOPIC = "orders.public.customers"
WEEK_MS = 7 * 86_400_000


@dataclass
class Probe:
    """A test-only pair customers -> inventory.purge_<tag>, fed from its own topic."""

    env: dict[str, str]
    pair: ReplicationPair
    spec_path: Path
    live: list[int] = field(default_factory=list)
    old_live: list[int] = field(default_factory=list)      # live rows aged like the old markers
    old_markers: list[int] = field(default_factory=list)   # deleted, aged past any keep
    fresh_markers: list[int] = field(default_factory=list)  # deleted just now

    admin: AdminClient = field(init=False)

    def __post_init__(self) -> None:  # one client: its futures fail once it is garbage
        self.admin = AdminClient(access(self.env, ADMIN).config())

    def set_retention(self, ms: int) -> None:
        """retention.ms, and segment.ms alike (a message can outlive retention by a segment's time)."""
        entries = [ConfigEntry(key, str(value), incremental_operation=AlterConfigOpType.SET)
                   for key, value in (("retention.ms", ms), ("segment.ms", max(ms, 1_000)))]
        res = ConfigResource(ConfigResource.Type.TOPIC, self.pair.source_topic, incremental_configs=entries)
        for fut in self.admin.incremental_alter_configs([res]).values():
            fut.result(timeout=30)

    def replica(self) -> dict[int, bool]:
        """key -> cdc_deleted, for the probe's rows."""
        with psycopg.connect(self.env["INVENTORY_OBSERVER_URL"]) as conn:
            return dict(conn.execute(f"SELECT orders_customer_id, cdc_deleted FROM {self.pair.replica_table}").fetchall())

    def expected_before_purge(self) -> dict[int, bool]:
        return {**{i: False for i in self.live + self.old_live}, **{i: True for i in self.old_markers + self.fresh_markers}}

    def age(self, ids: list[int], days: float) -> None:
        with psycopg.connect(self.env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
            conn.execute(f"UPDATE {self.pair.replica_table} SET cdc_applied_at = now() - make_interval(days => %s) "
                         "WHERE orders_customer_id = ANY(%s)", (days, ids))


def _change_events(env: dict[str, str], reader, ids: set[int], deletes: int) -> list:
    """The change events (and tombstones) of these customers on orders.public.customers."""
    def mine(m) -> bool:
        try:
            return json.loads(m.key())["id"] in ids
        except (TypeError, ValueError, KeyError):
            return False
    reader.wait_for(lambda m: mine(m) and m.value() is not None, len(ids) + deletes, 60,
                    "the probe rows' inserts and deletes captured")
    return [m for m in reader.read_to_end() if mine(m)]


@pytest.fixture
def probe(stack_env, reader, unique, tmp_path):
    """Rows made in orders.customers, their events copied into the probe's topic (created with
    the broker's default retention), the replica table made; removed afterwards."""
    topic = f"purge-test-{unique}"
    spec_path = tmp_path / "replication.json"
    spec_path.write_text(json.dumps({"pairs": [{
        "name": f"purge-{unique}", "source": {"service": "orders", "table": "customers"},
        "target": {"service": "inventory", "table": f"purge_{unique}"}, "key": {"id": "orders_customer_id"},
        "columns": {"name": "name"}, "delete_policy": "delete", "types": {"orders_customer_id": "bigint"},
        "topic": topic}]}))
    pair = spec_mod.load(spec_path).pairs[0]
    p = Probe(stack_env, pair, spec_path)
    for fut in p.admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        fut.result(timeout=30)
    with psycopg.connect(stack_env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
        for statement in replicas.ddl(pair):
            conn.execute(statement)

    r = reader(SOURCE_TOPIC)
    with psycopg.connect(stack_env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
        ids = [conn.execute("INSERT INTO customers (name, email, country, document_number, phone) VALUES "
                            "(%s, %s, 'ES', 'DOC', '555-0100') RETURNING id",
                            (f"purge-{unique}-{i}", f"purge-{unique}-{i}@example.org")).fetchone()[0]
               for i in range(10)]
        p.live, p.old_live, p.old_markers, p.fresh_markers = ids[:2], ids[2:4], ids[4:8], ids[8:]
        for cid in p.old_markers + p.fresh_markers:
            conn.execute("DELETE FROM customers WHERE id = %s", (cid,))
    producer = Producer(access(stack_env, ADMIN).config())
    for m in _change_events(stack_env, r, set(ids), len(p.old_markers + p.fresh_markers)):
        producer.produce(topic, key=m.key(), value=m.value(), headers=m.headers())
    assert producer.flush(30) == 0
    yield p

    with psycopg.connect(stack_env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(f"DROP VIEW IF EXISTS {pair.target.table}")
        conn.execute(f"DROP TABLE IF EXISTS {pair.replica_table}")
        conn.execute("DELETE FROM cdc_replication_sources WHERE pair = %s", (pair.name,))
    for fut in p.admin.delete_topics([topic, pair.dead_letter_topic]).values():
        with contextlib.suppress(KafkaException):  # the dead-letter topic may not exist
            fut.result(timeout=30)


def _worker(p: Probe, tmp_path: Path) -> WorkerProcess:
    # a test-only pair is not in the enabled spec: the admin gives it a principal and its ACLs
    creds = acls.provision_pair(access(p.env, ADMIN), p.pair, new_password())
    w = WorkerProcess(p.pair.name, {**p.env, **creds}, tmp_path, args=["--spec", str(p.spec_path)],
                      extra_env={"CDC_REPLICATION_PURGE_EVERY": "1"})
    w.wait_healthy()
    poll(p.replica, lambda rows: rows == p.expected_before_purge(), 60,
         f"the probe's replica {p.expected_before_purge()} (worker: {diagnose()})")
    return w


def _purge(w: WorkerProcess) -> dict:
    return w.health().get("purge", {})


def _runs_after(w: WorkerProcess, keep_s: float | None, extra_runs: int = 2) -> dict:
    """Health once the purge has run `extra_runs` more times with this keep (so with the rows as they are now)."""
    first = poll(lambda: _purge(w), lambda s: s.get("runs", 0) > 0 and s.get("keep_s") == keep_s, 60,
                 f"a purge run with keep_s={keep_s}")
    return poll(lambda: _purge(w), lambda s: s.get("keep_s") == keep_s and s["runs"] >= first["runs"] + extra_runs,
                60, f"{extra_runs} more purge runs with keep_s={keep_s}")


def test_markers_older_than_retention_plus_a_day_are_purged_live_rows_and_fresh_markers_stay(probe, tmp_path):
    w = _worker(probe, tmp_path)
    try:
        probe.age(probe.old_markers + probe.old_live, days=2)
        # the broker's default retention, a week: two-day-old markers may still meet an older change
        stats = _runs_after(w, 2 * WEEK_MS / 1000 + REDELIVERY_MARGIN_S)   # + a week-long segment
        assert stats["markers_purged"] == 0 and probe.replica() == probe.expected_before_purge()

        probe.set_retention(2_000)
        stats = poll(lambda: _purge(w), lambda s: s.get("markers_purged", 0) >= len(probe.old_markers), 60,
                     f"{len(probe.old_markers)} markers purged once the topic keeps messages 2 s")
        assert stats["keep_s"] == 4 + REDELIVERY_MARGIN_S and stats["last_run"] is not None
        want = {i: v for i, v in probe.expected_before_purge().items() if i not in probe.old_markers}
        assert probe.replica() == want, "only the expired markers go: live rows (however old) and fresh markers stay"
        stats = _runs_after(w, 4 + REDELIVERY_MARGIN_S)
        assert stats["markers_purged"] == len(probe.old_markers), stats
        metrics = httpx.get(f"http://127.0.0.1:{w.port}/metrics", timeout=5).text
        assert f'cdc_replication_markers_purged_total{{pair="{probe.pair.name}"}} {float(len(probe.old_markers))}' \
            in metrics, metrics
    finally:
        w.stop()


def test_a_topic_that_keeps_messages_forever_keeps_its_markers_forever(probe, tmp_path):
    probe.set_retention(-1)
    w = _worker(probe, tmp_path)
    try:
        probe.age(probe.old_markers + probe.old_live, days=365)
        stats = _runs_after(w, None)
        assert stats["markers_purged"] == 0, stats
        assert probe.replica() == probe.expected_before_purge(), "a year-old marker is still needed: the topic has " \
                                                                 "every older change"
    finally:
        w.stop()
