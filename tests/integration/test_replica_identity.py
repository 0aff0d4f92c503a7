"""Large values and the replica identity, on the real stack: a value over 8 kB left unchanged by
an update keeps its value in the replica (never Debezium's placeholder), and `cdc deploy`
refuses a pair whose source table is not REPLICA IDENTITY FULL, naming it."""
from __future__ import annotations

import secrets
import subprocess
import sys

import psycopg
import pytest

from cdc_testing.polling import poll
from cdc_testing.workers import WorkerProcess
from tests.integration.conftest import REPO
from tests.integration.replication_helpers import replica_rows

pytestmark = pytest.mark.integration
INVENTORY = "customers-to-inventory"


def test_a_large_value_unchanged_by_an_update_keeps_its_value_in_the_replica(stack_env, tmp_path, unique):
    big = f"{unique}-" + secrets.token_hex(6000)   # 12 kB of incompressible text: stored out of line (TOAST)
    with psycopg.connect(stack_env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
        cid = conn.execute("INSERT INTO customers (name, email, country) VALUES (%s, %s, 'ES') RETURNING id",
                           (big, f"{unique}@example.org")).fetchone()[0]
        stored = conn.execute("SELECT pg_column_size(name) FROM customers WHERE id = %s", (cid,)).fetchone()[0]
        assert stored > 8000, f"the value must be stored out of line to prove anything (stored {stored} bytes)"
        conn.execute("UPDATE customers SET country = 'PT' WHERE id = %s", (cid,))  # name left unchanged
    worker = WorkerProcess(INVENTORY, stack_env, tmp_path)
    try:
        worker.wait_healthy()
        row = poll(lambda: replica_rows(stack_env, INVENTORY).get(cid), lambda r: r is not None and "PT" in r, 90,
                   f"customer {cid} in the inventory replica with the update's country PT")
        assert big in row, f"the unchanged large name must arrive whole, not as a placeholder: {str(row)[:200]}"
    finally:
        worker.stop()


def test_deploy_refuses_a_pair_source_without_full_replica_identity(stack_env):
    with psycopg.connect(stack_env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("ALTER TABLE customers REPLICA IDENTITY DEFAULT")
    try:
        res = subprocess.run([sys.executable, "-m", "cli", "deploy"], cwd=REPO, capture_output=True, text=True)
        assert res.returncode == 2, f"deploy should refuse (exit 2), got {res.returncode}: {res.stdout}{res.stderr}"
        said = " ".join((res.stdout + res.stderr).split())
        assert "orders.customers has REPLICA IDENTITY DEFAULT" in said and "nothing deployed" in said, said
    finally:
        with psycopg.connect(stack_env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
            conn.execute("ALTER TABLE customers REPLICA IDENTITY FULL")
