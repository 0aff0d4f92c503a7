"""A replica table that lacks what its pair needs (a missing table or column: a wrong deployment)
stops the real worker with exit 70 before it acknowledges anything, instead of dead-lettering
every row; after `make up`-style repair the next worker applies the same change."""
from __future__ import annotations

import json

import psycopg
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from cdc_testing.polling import poll
from cdc_testing.workers import WorkerProcess
from connectors import acls
from stack.kafka_client import ADMIN, access
from stack.secrets import new_password
from streams import spec as spec_mod
from streams.durable import EXIT_UNAPPLIABLE
from tests.integration.offsets import CommittedWatch, committed
from tests.integration.test_source_identity import _event

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("breakage", ["DROP COLUMN", "DROP TABLE"])
def test_a_missing_replica_table_or_column_stops_the_worker_with_exit_70_unacknowledged(stack_env, tmp_path, unique,
                                                                                        breakage):
    name, table, topic = f"deploy-{unique}", f"t{unique}", f"test.deploy.{unique}"
    kafka = access(stack_env, ADMIN)
    admin = AdminClient(kafka.config())
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    target = stack_env["INVENTORY_DATABASE_URL"]
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table}_replica (LIKE customers_replica INCLUDING ALL)")
        conn.execute(f"ALTER TABLE {table}_replica DROP COLUMN name" if breakage == "DROP COLUMN"
                     else f"DROP TABLE {table}_replica")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"pairs": [{
        "name": name, "topic": topic, "source": {"service": "orders", "table": "customers"},
        "target": {"service": "inventory", "table": table}, "key": {"id": "orders_customer_id"},
        "columns": {"name": "name"}}]}))
    pair = spec_mod.load(spec).pairs[0]
    producer = Producer(kafka.config())
    producer.produce(topic, **_event(1, 5_000_000, "1111"))
    producer.flush(10)
    creds = acls.provision_pair(kafka, pair, new_password())  # a test-only pair: its principal and ACLs
    workers: list[WorkerProcess] = []
    try:
        watch = CommittedWatch(kafka, pair.group_id, topic).start()
        try:
            workers.append(WorkerProcess(name, stack_env, tmp_path, extra_env=creds, args=["--spec", str(spec)]))
            code = workers[-1].wait_exit(timeout=120)
            log = workers[-1].log.read_text(errors="replace")
            assert code == EXIT_UNAPPLIABLE, f"exit {code}, expected {EXIT_UNAPPLIABLE}:\n{log[-2000:]}"
            assert "cannot apply" in log and f"{table}_replica" in log, log[-2000:]
            watch.wait_samples(10)  # a while after the exit too: a commit on the way out would show
        finally:
            highest = watch.stop()
        assert all(off <= 0 for off in highest.values()), f"the change was acknowledged: {highest}"
        # repaired (as `make up` would migrate it), the next worker is handed the same change and applies it
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}_replica")
            conn.execute(f"CREATE TABLE {table}_replica (LIKE customers_replica INCLUDING ALL)")
        workers.append(WorkerProcess(name, stack_env, tmp_path, extra_env=creds, args=["--spec", str(spec)]))
        with psycopg.connect(stack_env["INVENTORY_OBSERVER_URL"]) as conn:
            poll(lambda: conn.execute(f"SELECT orders_customer_id FROM {table}_replica").fetchall(),
                 lambda r: r == [(1,)], 120, "the change applied by the worker started after the repair")
        poll(lambda: committed(kafka, pair.group_id, topic), lambda c: c == {0: 1}, 30,
             "the change acknowledged once it was applied (committed offset 1)")
    finally:
        for w in workers:
            w.stop()
        admin.delete_topics([topic, f"dlq.replication.{name}"])
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}_replica")
            conn.execute("DELETE FROM cdc_replication_sources WHERE pair = %s", (name,))
