"""What operators alert on, end to end: a replication worker's /healthz turns 503 (saying why)
while its target database is down and changes keep arriving, and 200 once it is back; `cdc
observe`, run as operators run it, exits 1 while a replica is behind and 0 once it converged."""
from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from cdc_testing.polling import poll
from cdc_testing.workers import REPO, WorkerProcess
from connectors.connect_api import ConnectClient
from services.registry import current
from tests.integration.conftest import cdc
from tests.integration.replication_helpers import SPEC, replica_rows

pytestmark = pytest.mark.integration
PAIR = "customers-to-inventory"
TARGET = SPEC.pair(PAIR).target.service


def _observe(timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", "observe", "--pair", PAIR, "--timeout", str(timeout)],
                          cwd=REPO, capture_output=True, text=True)


def _insert(env: dict[str, str], name: str) -> int:
    with psycopg.connect(env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
        row = conn.execute("INSERT INTO customers (name, email, country) VALUES (%s, %s, 'ES') RETURNING id",
                           (name, f"{name}@example.org")).fetchone()
    assert row is not None
    return row[0]


def test_observe_exits_1_while_a_replica_is_behind_and_0_once_it_converged(stack_env, tmp_path, unique):
    cid = _insert(stack_env, f"behind-{unique}")  # no worker of the pair runs: the replica falls behind
    behind = _observe(timeout=3)
    assert behind.returncode == 1, f"`cdc observe` exited {behind.returncode} with the replica behind:\n" \
                                   f"{behind.stdout[-3000:]}{behind.stderr[-2000:]}"
    assert PAIR in behind.stdout and "no" in behind.stdout, behind.stdout[-3000:]
    worker = WorkerProcess(PAIR, stack_env, tmp_path)
    try:
        worker.wait_healthy()
        converged = _observe(timeout=120)
        assert converged.returncode == 0, f"`cdc observe` exited {converged.returncode} after the worker caught " \
                                          f"up:\n{converged.stdout[-3000:]}{converged.stderr[-2000:]}"
        assert cid in replica_rows(stack_env, PAIR)
    finally:
        worker.stop()


@pytest.mark.destructive
def test_healthz_is_503_with_its_reason_while_the_target_database_is_down_and_200_after(stack_env, tmp_path,
                                                                                         unique):
    worker = WorkerProcess(PAIR, stack_env, tmp_path)
    stopped = False
    try:
        worker.wait_healthy()
        cdc("db", "stop", TARGET)
        stopped = True
        cids = [_insert(stack_env, f"down-{unique}-{i}") for i in range(3)]  # changes keep arriving
        # the worker retries the batch without progress; /healthz says so once stall_after (30 s) passed
        down = poll(worker.health, lambda h: h.get("status") == 503, 120,
                    f"/healthz of {PAIR} answering 503 while {TARGET}'s database is down")
        assert "no progress" in down["reason"] and down["lag"] > 0, down
        assert worker.proc.poll() is None, "the worker waits for its database; it does not exit"
        cdc("db", "start", TARGET)
        stopped = False
        worker.wait_healthy()
        rows = poll(lambda: replica_rows(stack_env, PAIR), lambda r: all(c in r for c in cids), 120,
                    f"customers {cids}, inserted while {TARGET} was down, in the replica")
        assert rows
        poll(worker.health, lambda h: h.get("status") == 200 and h.get("lag") == 0, 60,
             f"/healthz of {PAIR} 200 with no lag after the database came back")
        converged = _observe(timeout=120)
        assert converged.returncode == 0, converged.stdout[-3000:] + converged.stderr[-2000:]
    finally:
        if stopped:
            cdc("db", "start", TARGET)
        worker.stop()
        client = ConnectClient(stack_env["CONNECT_URL"])
        try:  # the target's own capture connector lost its database too; it must be back
            client.wait_running([current().service(TARGET).connector], timeout=120)
        finally:
            client.close()
