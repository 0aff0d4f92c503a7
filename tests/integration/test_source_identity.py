"""A rebuilt source (another cluster system identifier) is refused, not silently skipped:
its positions restart low and would all look older than what the replica holds."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import orjson
import psycopg
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from connectors import acls
from stack.kafka_client import ADMIN, access
from stack.secrets import new_password
from streams import spec as spec_mod
from streams.app import EXIT_UNAPPLIABLE
from tests.integration.workers import REPO, free_port
from tests.polling import poll

pytestmark = pytest.mark.integration
SAMPLE = REPO / "tests" / "unit" / "samples" / "customer_insert.json"


def _event(key: int, lsn: int, system_id: str) -> dict[str, bytes]:
    value = json.loads(SAMPLE.read_text())["value"]
    value["after"]["id"] = key
    value["source"]["lsn"] = lsn
    value["source_system_id"] = system_id
    return {"key": orjson.dumps({"id": key}), "value": orjson.dumps(value)}


def test_changes_from_a_rebuilt_source_stop_the_worker_unacknowledged(stack_env, tmp_path, unique):
    name, table, topic = f"identity-{unique}", f"t{unique}", f"test.identity.{unique}"
    admin = AdminClient(access(stack_env, ADMIN).config())
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    with psycopg.connect(stack_env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table}_replica (LIKE customers_replica INCLUDING ALL)")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"pairs": [{
        "name": name, "topic": topic, "source": {"service": "orders", "table": "customers"},
        "target": {"service": "inventory", "table": table}, "key": {"id": "orders_customer_id"},
        "columns": {"name": "name"}}]}))
    producer = Producer(access(stack_env, ADMIN).config())
    producer.produce(topic, **_event(1, 5_000_000, "1111"))
    producer.flush(10)
    # a test-only pair is not in the enabled spec: the admin gives it a principal and its ACLs
    creds = acls.provision_pair(access(stack_env, ADMIN), spec_mod.load(spec).pairs[0], new_password())
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "cli", "worker", "--pair", name, "--spec", str(spec),
                                   "--web-port", str(free_port())], cwd=REPO, env={**os.environ, **stack_env, **creds},
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        def replica() -> dict:
            with psycopg.connect(stack_env["INVENTORY_OBSERVER_URL"]) as conn:
                return dict(conn.execute(f"SELECT orders_customer_id, cdc_position FROM {table}_replica").fetchall())

        poll(replica, lambda rows: rows == {1: 5_000_000}, 60, "the first change applied")
        # The "rebuilt" cluster: another identifier, a low position.
        producer.produce(topic, **_event(2, 100, "2222"))
        producer.flush(10)
        code = worker.wait(timeout=60)
        assert code == EXIT_UNAPPLIABLE, (tmp_path / "worker.log").read_text()[-2000:]
        assert "source was rebuilt" in (tmp_path / "worker.log").read_text()
        assert replica() == {1: 5_000_000}, "nothing of the rebuilt source may be applied"
    finally:
        if worker.poll() is None:
            worker.kill()
        admin.delete_topics([topic, f"dlq.replication.{name}"])
        with psycopg.connect(stack_env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}_replica")
            conn.execute("DELETE FROM cdc_replication_sources WHERE pair = %s", (name,))
