"""Schema changes at the source with the pair's worker running (issue 15, point 4): a column added
to a captured table changes nothing until a pair lists it, then a backfill fills it on the rows
written before; a replicated column dropped or renamed
stops the worker (exit 70) naming the pair and the column, with nothing acknowledged and nothing
dead-lettered, and the change arrives once the spec is fixed.

The pair is a test-only one (its own principal, group and replica table) on the real
orders.customers topic, and the columns it loses are ones the test added: the changes it leaves on
the shared topic lack only columns no shipped pair lists."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from connectors import acls
from stack.kafka_client import ADMIN, KafkaAccess, access
from stack.secrets import new_password
from streams import spec as spec_mod
from streams.backfill import signal_snapshot
from streams.durable import EXIT_UNAPPLIABLE
from streams.spec import ReplicationPair
from tests.integration.offsets import CommittedWatch, committed, end_offsets
from tests.integration.workers import WorkerProcess
from tests.polling import poll

pytestmark = pytest.mark.integration
TOPIC = "orders.public.customers"


@dataclass
class Probe:
    """A test-only pair from orders.customers into inventory.<table>_replica (with a `tier` column)."""

    env: dict[str, str]
    tmp: Path
    name: str
    table: str
    kafka: KafkaAccess
    creds: dict[str, str] = field(default_factory=dict)
    workers: list[WorkerProcess] = field(default_factory=list)
    spec_files: int = 0

    def pair(self, columns: dict[str, str]) -> tuple[ReplicationPair, Path]:
        self.spec_files += 1
        path = self.tmp / f"spec-{self.spec_files}.json"
        path.write_text(json.dumps({"pairs": [{
            "name": self.name, "source": {"service": "orders", "table": "customers"},
            "target": {"service": "inventory", "table": self.table}, "key": {"id": "orders_customer_id"},
            "columns": columns, "types": {"orders_customer_id": "bigint"}}]}))
        return spec_mod.load(path).pairs[0], path

    def start(self, columns: dict[str, str]) -> WorkerProcess:
        pair, path = self.pair(columns)
        if not self.creds:
            self.creds = acls.provision_pair(self.kafka, pair, new_password())
        worker = WorkerProcess(self.name, self.env, self.tmp, extra_env=self.creds, args=["--spec", str(path)])
        self.workers.append(worker)
        return worker

    @property
    def group(self) -> str:
        return f"cdc-replication-{self.name}"

    def caught_up(self) -> None:
        def behind() -> dict[int, tuple[int, int]]:
            done, end = committed(self.kafka, self.group, TOPIC), end_offsets(self.kafka, TOPIC)
            return {p: (max(done.get(p, -1), 0), e) for p, e in end.items() if max(done.get(p, -1), 0) < e}
        poll(behind, lambda b: not b, 120, f"{self.group} to have acknowledged {TOPIC} to its end "
                                           "(partition: (committed, end))")

    def replica(self, cid: int) -> tuple | None:
        with psycopg.connect(self.env["INVENTORY_OBSERVER_URL"]) as conn:
            return conn.execute(f"SELECT name, tier FROM {self.table}_replica WHERE orders_customer_id = %s",
                                (cid,)).fetchone()

    def wait_replica(self, cid: int, expected: tuple) -> None:
        poll(lambda: self.replica(cid), lambda r: r == expected, 90, f"customer {cid} replicated as {expected}")

    def dead_letters(self) -> int:
        topic = f"dlq.replication.{self.name}"
        if topic not in AdminClient(self.kafka.config()).list_topics(timeout=10).topics:
            return 0
        return sum(end_offsets(self.kafka, topic).values())


def source(env: dict[str, str], statement: str, params: tuple = ()) -> Any:
    """Run one statement on orders as its owner; the first value it returns, if any."""
    with psycopg.connect(env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchone()[0] if cur.description else None


def new_customer(env: dict[str, str], name: str) -> int:
    cid = source(env, "INSERT INTO customers (name, email, country) VALUES (%s, %s, 'ES') RETURNING id",
                 (name, f"{name}@example.org"))
    return int(cid)


@pytest.fixture
def probe(stack_env, tmp_path, unique) -> Iterator[Probe]:
    name, table = f"schema-{unique}", f"s{unique}"
    with psycopg.connect(stack_env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table}_replica (LIKE customers_replica INCLUDING ALL)")
        conn.execute(f"ALTER TABLE {table}_replica ADD COLUMN tier text")
    p = Probe(stack_env, tmp_path, name, table, access(stack_env, ADMIN))
    try:
        yield p
    finally:
        for w in p.workers:
            w.stop()
        with psycopg.connect(stack_env["ORDERS_DATABASE_URL"], autocommit=True) as conn:  # the source as it was
            for col in (f"tier_{unique}", f"level_{unique}", f"grade_{unique}"):
                conn.execute(f"ALTER TABLE customers DROP COLUMN IF EXISTS {col}")
        with psycopg.connect(stack_env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}_replica")
            conn.execute("DELETE FROM cdc_replication_sources WHERE pair = %s", (name,))
            conn.execute("DELETE FROM cdc_replica_generations WHERE pair = %s", (name,))
        AdminClient(p.kafka.config()).delete_topics([f"dlq.replication.{name}"])


def stopped_unacknowledged(probe: Probe, worker: WorkerProcess, before: dict[int, int], column: str,
                           letters_before: int) -> None:
    """The worker exits 70 naming the pair and the column; the group never commits past `before`
    (the end of the topic before the change the spec no longer fits), during or after the exit.
    `letters_before`: the pair's dead letters before the change (a new pair reads the shared topic
    from its start, poison messages of other tests included)."""
    watch = CommittedWatch(probe.kafka, probe.group, TOPIC).start()
    try:
        code = worker.wait_exit(timeout=90)
        watch.wait_samples(10)  # and a while after the exit: a commit on the way out would show
    finally:
        highest = watch.stop()
    log = worker.log.read_text(errors="replace")
    assert code == EXIT_UNAPPLIABLE, f"expected exit {EXIT_UNAPPLIABLE}, got {code}:\n{log[-2000:]}"
    assert f"pair {probe.name}" in log and column in log, f"the error must name the pair and {column}:\n{log[-2000:]}"
    ahead = {p: (o, before.get(p, 0)) for p, o in highest.items() if o > before.get(p, 0)}
    assert not ahead, f"committed past the change it could not apply (partition: (committed, end before)): {ahead}"
    assert probe.dead_letters() == letters_before, "a schema change is not a poison message: nothing may be dead-lettered"


def test_an_added_column_changes_nothing_then_a_dropped_replicated_one_stops_the_worker(probe, stack_env, unique):
    tier = f"tier_{unique}"
    worker = probe.start({"name": "name"})
    worker.wait_healthy()
    probe.caught_up()
    # (i) a column added to the captured table, not in the pair: replication goes on, replica as before
    source(stack_env, f"ALTER TABLE customers ADD COLUMN {tier} text")
    cid = new_customer(stack_env, f"added-{unique}")
    source(stack_env, f"UPDATE customers SET {tier} = 'gold' WHERE id = %s", (cid,))
    probe.wait_replica(cid, (f"added-{unique}", None))
    assert worker.proc.poll() is None, "an unreplicated column must not stop the worker"
    probe.caught_up()
    # the column added to the pair: a backfill fills it on the rows written before, changes from
    # then on carry it
    worker.stop()
    worker = probe.start({"name": "name", tier: "tier"})
    worker.wait_healthy()
    signal_snapshot(stack_env, "orders", "customers", f"backfill-{probe.name}", condition=f"id = {cid}")
    probe.wait_replica(cid, (f"added-{unique}", "gold"))
    source(stack_env, f"UPDATE customers SET {tier} = 'silver' WHERE id = %s", (cid,))
    probe.wait_replica(cid, (f"added-{unique}", "silver"))
    probe.caught_up()
    # (ii) the replicated column dropped at the source, then the row changed
    before, letters = end_offsets(probe.kafka, TOPIC), probe.dead_letters()
    source(stack_env, f"ALTER TABLE customers DROP COLUMN {tier}")
    source(stack_env, "UPDATE customers SET name = %s WHERE id = %s", (f"dropped-{unique}", cid))
    stopped_unacknowledged(probe, worker, before, tier, letters)
    assert probe.replica(cid) == (f"added-{unique}", "silver"), "nothing of the refused change applied"
    # a restart with the same spec refuses the same change again: it was not skipped
    stopped_unacknowledged(probe, probe.start({"name": "name", tier: "tier"}), before, tier, letters)
    # the spec fixed (the column no longer replicated): the change arrives
    probe.start({"name": "name"}).wait_healthy()
    probe.wait_replica(cid, (f"dropped-{unique}", "silver"))
    probe.caught_up()


def test_a_renamed_replicated_column_stops_the_worker_until_the_spec_follows_the_rename(probe, stack_env, unique):
    level, grade = f"level_{unique}", f"grade_{unique}"
    worker = probe.start({"name": "name"})
    worker.wait_healthy()
    probe.caught_up()
    source(stack_env, f"ALTER TABLE customers ADD COLUMN {level} text")
    worker.stop()  # caught up before the column came: every change from here carries it
    worker = probe.start({"name": "name", level: "tier"})
    worker.wait_healthy()
    cid = new_customer(stack_env, f"renamed-{unique}")
    source(stack_env, f"UPDATE customers SET {level} = 'gold' WHERE id = %s", (cid,))
    probe.wait_replica(cid, (f"renamed-{unique}", "gold"))
    probe.caught_up()
    before, letters = end_offsets(probe.kafka, TOPIC), probe.dead_letters()
    source(stack_env, f"ALTER TABLE customers RENAME COLUMN {level} TO {grade}")
    source(stack_env, f"UPDATE customers SET {grade} = 'platinum' WHERE id = %s", (cid,))
    stopped_unacknowledged(probe, worker, before, level, letters)
    assert grade in worker.log.read_text(errors="replace"), "the error should point at the column's new name"
    assert probe.replica(cid) == (f"renamed-{unique}", "gold")
    # the spec follows the rename: the refused change arrives, with its value
    probe.start({"name": "name", grade: "tier"}).wait_healthy()
    probe.wait_replica(cid, (f"renamed-{unique}", "platinum"))
    probe.caught_up()
