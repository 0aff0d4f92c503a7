"""A replication worker that stops making progress restarts itself in place (the saga workers'
watchdog, streams/liveness.py), acknowledges nothing while stuck, and applies the change once
the replica table is free again."""
from __future__ import annotations

import psycopg
import pytest

from cdc_testing.polling import poll
from cdc_testing.workers import WorkerProcess
from observe.replication import consumer_lag
from stack.kafka_client import OBSERVER, access
from tests.integration.replication_helpers import SPEC

pytestmark = pytest.mark.integration
RESTARTED = "Restarting the worker in place"
PAIR = "customers-to-inventory"


def test_a_stuck_replication_worker_restarts_in_place_and_applies_the_batch_after(stack_env, tmp_path, unique):
    pair = SPEC.pair(PAIR)
    target = stack_env[f"{pair.target.service.upper()}_DATABASE_URL"]
    worker = WorkerProcess(PAIR, stack_env, tmp_path, extra_env={"CDC_WORKER_STALL_RESTART": "4"})
    blocker = psycopg.connect(target)
    try:
        worker.wait_healthy()
        poll(lambda: consumer_lag(access(stack_env, OBSERVER), pair.group_id, pair.source_topic),
             lambda lag: lag == 0, 60, "the worker caught up before the test")
        pid = worker.proc.pid
        # The apply will wait on this lock: no error, no retry, no progress (a stuck worker).
        blocker.execute(f"LOCK TABLE {pair.replica_table} IN ACCESS EXCLUSIVE MODE")
        with psycopg.connect(stack_env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
            cid = conn.execute("INSERT INTO customers (name, email, country) VALUES (%s, %s, 'ES') RETURNING id",
                               (f"stuck-{unique}", f"stuck-{unique}@example.org")).fetchone()[0]
        poll(lambda: worker.log.read_text(errors="replace"), lambda text: RESTARTED in text, 90,
             f"the {PAIR} worker to log {RESTARTED!r}")
        assert worker.proc.poll() is None and worker.proc.pid == pid, "restarted in place: same process, still running"
        lag = consumer_lag(access(stack_env, OBSERVER), pair.group_id, pair.source_topic)
        assert lag > 0, "nothing acknowledged while the batch was not applied"
        blocker.rollback()  # unstuck
        with psycopg.connect(stack_env[f"{pair.target.service.upper()}_OBSERVER_URL"]) as conn:
            def replicated():
                return conn.execute(f"SELECT name FROM {pair.replica_table} WHERE orders_customer_id = %s",
                                    (cid,)).fetchall()
            rows = poll(replicated, bool, 90, "the change applied after the restart")
        assert rows == [(f"stuck-{unique}",)]
        worker.wait_healthy()
        poll(lambda: consumer_lag(access(stack_env, OBSERVER), pair.group_id, pair.source_topic),
             lambda lag: lag == 0, 60, "the batch acknowledged after it was applied")
    finally:
        blocker.close()
        worker.stop()
