"""A rebuilt source (another cluster system identifier) is refused, not silently skipped:
its positions restart low and would all look older than what the replica holds."""
from __future__ import annotations

import json

import orjson
import psycopg
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from cdc_testing.polling import poll
from cdc_testing.workers import REPO, WorkerProcess
from connectors import acls
from stack.kafka_client import ADMIN, access
from stack.secrets import new_password
from streams import spec as spec_mod
from streams.app import EXIT_UNAPPLIABLE
from tests.integration.offsets import CommittedWatch, committed

pytestmark = pytest.mark.integration
SAMPLE = REPO / "tests" / "unit" / "samples" / "customer_insert.json"


def _event(key: int, lsn: int, system_id: str) -> dict[str, bytes]:
    value = json.loads(SAMPLE.read_text())["value"]
    value["after"]["id"] = key
    value["source"]["lsn"] = lsn
    value["source_system_id"] = system_id
    return {"key": orjson.dumps({"id": key}), "value": orjson.dumps(value)}


def test_changes_from_a_rebuilt_source_stop_the_worker_unacknowledged(stack_env, tmp_path, unique):
    """The refused change is never acknowledged: the group's committed offset, read with a plain
    client while the worker refuses it and after it exited, stays on it; a second worker is
    handed the same change again and refuses it again."""
    name, table, topic = f"identity-{unique}", f"t{unique}", f"test.identity.{unique}"
    kafka = access(stack_env, ADMIN)
    admin = AdminClient(kafka.config())
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    with psycopg.connect(stack_env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table}_replica (LIKE customers_replica INCLUDING ALL)")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"pairs": [{
        "name": name, "topic": topic, "source": {"service": "orders", "table": "customers"},
        "target": {"service": "inventory", "table": table}, "key": {"id": "orders_customer_id"},
        "columns": {"name": "name"}}]}))
    pair = spec_mod.load(spec).pairs[0]
    producer = Producer(kafka.config())
    producer.produce(topic, **_event(1, 5_000_000, "1111"))
    producer.flush(10)
    # a test-only pair is not in the enabled spec: the admin gives it a principal and its ACLs
    creds = acls.provision_pair(kafka, pair, new_password())
    workers: list[WorkerProcess] = []

    def start_worker() -> WorkerProcess:
        workers.append(WorkerProcess(name, stack_env, tmp_path, extra_env=creds,
                                     args=["--spec", str(spec)]))
        return workers[-1]

    def refused(worker: WorkerProcess) -> None:
        code = worker.wait_exit(timeout=60)
        log = worker.log.read_text(errors="replace")
        assert code == EXIT_UNAPPLIABLE, log[-2000:]
        assert "source was rebuilt" in log, log[-2000:]

    try:
        worker = start_worker()

        def replica() -> dict:
            with psycopg.connect(stack_env["INVENTORY_OBSERVER_URL"]) as conn:
                return dict(conn.execute(f"SELECT orders_customer_id, cdc_position FROM {table}_replica").fetchall())

        poll(replica, lambda rows: rows == {1: 5_000_000}, 60, "the first change applied")
        poll(lambda: committed(kafka, pair.group_id, topic), lambda c: c == {0: 1}, 30,
             "the first change, durable, acknowledged (committed offset 1)")
        watch = CommittedWatch(kafka, pair.group_id, topic).start()
        try:
            # The "rebuilt" cluster: another identifier, a low position. It lands at offset 1.
            producer.produce(topic, **_event(2, 100, "2222"))
            producer.flush(10)
            refused(worker)
            watch.wait_samples(10)  # and a while after the exit: a commit on the way out would show
        finally:
            highest = watch.stop()
        assert highest == {0: 1}, f"the refused change at offset 1 was acknowledged: {highest}"
        assert replica() == {1: 5_000_000}, "nothing of the rebuilt source may be applied"
        # Unacknowledged means delivered again: the next worker gets the same change and stops too.
        refused(start_worker())
        assert committed(kafka, pair.group_id, topic) == {0: 1}
        assert replica() == {1: 5_000_000}
    finally:
        for w in workers:
            w.stop()
        admin.delete_topics([topic, f"dlq.replication.{name}"])
        with psycopg.connect(stack_env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}_replica")
            conn.execute("DELETE FROM cdc_replication_sources WHERE pair = %s", (name,))
