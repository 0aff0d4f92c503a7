"""Kafka Connect as a cluster of two workers (CDC_CONNECT_WORKERS=2): kill -9 the worker that
runs a service's capture connector and the other takes it over, capture going on."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from cdc_testing.polling import poll
from connectors.connect_api import ConnectClient
from stack import kafka
from stack.processes import read_pid, stop
from stack.settings import StackSettings
from tests.integration.conftest import REPO
from tests.integration.replication_helpers import SPEC

pytestmark = [pytest.mark.integration, pytest.mark.destructive, pytest.mark.timeout(1500)]
CONNECTOR = "orders-source"


def _up(workers: int) -> None:
    res = subprocess.run([sys.executable, "-m", "cli", "up"], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "CDC_CONNECT_WORKERS": str(workers)})
    assert res.returncode == 0, f"`cdc up` with {workers} Connect workers failed:\n{res.stdout[-3000:]}{res.stderr[-3000:]}"


def _task_worker(client: ConnectClient) -> str | None:
    """host:port of the worker running the connector's task, when it runs."""
    tasks = client.http.get(f"/connectors/{CONNECTOR}/status").json().get("tasks", [])
    running = [t["worker_id"] for t in tasks if t.get("state") == "RUNNING"]
    return running[0] if running else None


def test_killed_connect_worker_hands_its_capture_to_the_other(stack_env, reader, monkeypatch, unique):
    import psycopg

    monkeypatch.setenv("CDC_CONNECT_WORKERS", "2")
    s = StackSettings.from_env()
    _up(2)
    client = ConnectClient(",".join(s.connect_urls), timeout=10, rebalance_patience=30)
    try:
        victim = poll(lambda: _task_worker(client), lambda w: w is not None, 120,
                      f"{CONNECTOR}'s task RUNNING on one of the workers {s.connect_urls}")
        name = next(n for n in s.connect_worker_names() if victim.endswith(f":{s.connect_worker_port(n)}"))
        pid = read_pid(kafka.pid_file(s, name))
        assert pid is not None, f"no pid for {name}, the worker at {victim}"
        source = reader(SPEC.pair("customers-to-inventory").source_topic)
        os.kill(pid, signal.SIGKILL)
        with psycopg.connect(stack_env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
            conn.execute("INSERT INTO customers (name, email) VALUES (%s, %s)",
                         (f"after-kill-{unique}", f"{unique}@example.org"))
        source.wait_for(lambda m: f"after-kill-{unique}".encode() in (m.value() or b""), 1, 300,
                        f"the change committed after {name} was killed, captured by the surviving worker")
        now = poll(lambda: _task_worker(client), lambda w: w is not None, 60, f"{CONNECTOR} RUNNING again")
        assert now != victim, f"the task should run on the surviving worker, not on the killed {victim}"
    finally:
        client.close()
        monkeypatch.setenv("CDC_CONNECT_WORKERS", "1")
        _up(1)  # brings the first worker back if it was the one killed
        stop(kafka.pid_file(s, "connect-2"), timeout=90)
        first = ConnectClient(stack_env["CONNECT_URL"])
        try:
            first.wait_running(first.names(), timeout=180)
        finally:
            first.close()
