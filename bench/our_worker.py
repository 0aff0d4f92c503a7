"""Our replication worker as the benches run it: a one-pair spec for a bench topic, an empty
replica table in the inventory database, the worker process started and held until it holds its
partitions, then stopped. One place, so every bench measures the same worker the same way."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

from connectors import acls
from stack.kafka_client import ADMIN, access
from stack.secrets import new_password
from stack.settings import HOST
from streams import spec as spec_mod

REPO = Path(__file__).resolve().parents[1]
REPLICA = "bench_customers_replica"


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def our_worker(env: dict[str, str], name: str, topic: str, with_version: bool, batch_max: int = 5000,
               extra_args: tuple[str, ...] = ()) -> Iterator[subprocess.Popen]:
    """Yields the running worker process (healthy, partitions held); stops it on exit."""
    columns = {"name": "name", "country": "country", **({"version": "version"} if with_version else {})}
    with psycopg.connect(env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("DROP VIEW IF EXISTS bench_customers")
        conn.execute(f"DROP TABLE IF EXISTS {REPLICA}")  # recreated: follows the replica's migrations
        conn.execute(f"CREATE TABLE {REPLICA} (LIKE customers_replica INCLUDING ALL)")
        if with_version:
            conn.execute(f"ALTER TABLE {REPLICA} ADD COLUMN version int")
    spec = {"pairs": [{"name": name, "topic": topic, "source": {"service": "orders", "table": "customers"},
                       "target": {"service": "inventory", "table": "bench_customers"},
                       "key": {"id": "orders_customer_id"}, "columns": columns, "delete_policy": "delete"}]}
    spec_file = Path(tempfile.mkstemp(suffix=".json")[1])
    spec_file.write_text(json.dumps(spec))
    # a bench pair is not in the enabled spec: its principal and ACLs are made here, by the admin
    pair = spec_mod.load(spec_file).pairs[0]
    creds = acls.provision_pair(access(env, ADMIN), pair, new_password())
    try:
        with healthy_process(["worker", "--pair", name, "--spec", str(spec_file), "--batch-max", str(batch_max),
                              "--loglevel", "warning", *extra_args], {**env, **creds}, name) as proc:
            yield proc
    finally:
        spec_file.unlink(missing_ok=True)


@contextmanager
def healthy_process(cdc_args: list[str], env: dict[str, str], name: str,
                    timeout: float = 120) -> Iterator[subprocess.Popen]:
    """`cdc <args> --web-port P` as a process, yielded once its /healthz says 200; stopped on exit."""
    port = 20000 + (os.getpid() + hash(name)) % 10000
    log = Path(tempfile.gettempdir()) / f"{name}.log"
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen([sys.executable, "-m", "cli", *cdc_args, "--web-port", str(port)], cwd=REPO,
                                env={**os.environ, **env}, stdout=log_fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not come up healthy; see {log}")
            time.sleep(0.01)
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)
