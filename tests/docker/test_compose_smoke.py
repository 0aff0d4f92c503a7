"""The compose stack runs the pipeline as the native one does: connectors deployed by `cdc deploy`
capture every service, replicas converge and record the source database's real identity, and the place-order
saga completes and compensates in both modes with the workers that `cdc workers start` runs."""
from __future__ import annotations

from decimal import Decimal

import httpx
import psycopg
import pytest

from cdc_testing.polling import poll
from cli.workers_cmd import running_saga_workers
from observe.replication import wait_converged
from services.ecommerce.orders.commands import OrderLine, place_order
from services.registry import current
from stack.settings import StackSettings
from streams import spec
from streams.sagas.worker import MODES
from tests.docker.conftest import cdc

pytestmark = pytest.mark.docker


def one(url: str, query: str, params: tuple = ()) -> tuple | None:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchone()


def test_every_connector_runs(stack_env):
    connect = stack_env["CONNECT_URL"]
    for svc in current().services:
        status = httpx.get(f"{connect}/connectors/{svc.connector}/status", timeout=10).json()
        states = [status["connector"]["state"], *(t["state"] for t in status["tasks"])]
        assert set(states) == {"RUNNING"}, f"{svc.connector}: expected RUNNING, saw {status}"


def test_replicas_converge(stack_env, unique):
    with psycopg.connect(stack_env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
        for i in range(20):
            conn.execute("INSERT INTO customers (name, email, country) VALUES (%s, %s, 'ES')",
                         (f"smoke-{unique}-{i}", f"{unique}-{i}@example.org"))
        conn.execute("UPDATE customers SET name = name || '-u' WHERE email LIKE %s", (f"{unique}-%",))
        conn.execute("DELETE FROM customers WHERE email = %s", (f"{unique}-0@example.org",))
    pairs = list(spec.load_enabled().pairs)
    reports = wait_converged(pairs, stack_env, timeout=180)
    bad = [r for r in reports if not r.converged]
    assert pairs and not bad, "expected every pair converged; saw " + "; ".join(
        f"{r.pair}: rows {r.source_rows}/{r.replica_rows}, checksums match {r.checksums_match}, "
        f"lag {r.consumer_lag}" for r in bad)
    # the events carried the source's real identity (Connect's container read it), not `unknown`
    for pair in pairs:
        source = pair.source.service.upper()
        ident = one(stack_env[f"{source}_OBSERVER_URL"], "SELECT system_identifier::text FROM pg_control_system()")
        seen = one(stack_env[f"{pair.target.service.upper()}_OBSERVER_URL"],
                   "SELECT source_system_id FROM cdc_replication_sources WHERE pair = %s", (pair.name,))
        assert ident is not None and seen == ident, f"{pair.name}: expected source id {ident}, replica recorded {seen}"


def _order(env: dict[str, str], unique: str, credit: str) -> int:
    sku = f"SKU-{unique}"
    with psycopg.connect(env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO stock_items (sku, on_hand) VALUES (%s, 10)", (sku,))
    with psycopg.connect(env["ORDERS_DATABASE_URL"]) as conn:
        row = conn.execute("INSERT INTO customers (name, email, credit_limit) VALUES (%s, %s, %s) RETURNING id",
                           (f"saga-{unique}", f"{unique}@example.org", credit)).fetchone()
        assert row is not None
        conn.commit()
        return place_order(conn, row[0], [OrderLine(sku, 2, Decimal("10.00"))], "ES")


def _ended(env: dict[str, str], order_id: int) -> tuple[str, str]:
    state = poll(lambda: one(env["ORCHESTRATOR_OBSERVER_URL"],
                             "SELECT state FROM saga_instances WHERE payload->>'order_id' = %s", (str(order_id),)),
                 lambda row: row is not None and row[0] in ("COMPLETED", "COMPENSATED", "FAILED"), 180,
                 f"the saga of order {order_id} to end")
    status = one(env["ORDERS_OBSERVER_URL"], "SELECT status FROM orders WHERE id = %s", (order_id,))
    assert status is not None
    return state[0], status[0]


@pytest.mark.timeout(1800)  # a mode switch restarts every worker: minutes on a 2-core machine under load
@pytest.mark.parametrize("mode", MODES)
def test_saga_completes_and_one_compensates(stack_env, unique, mode):
    settings = StackSettings.from_env()
    if any(running_saga_workers(settings, m) for m in MODES if m != mode):
        cdc("workers", "stop")  # a mode switch: the other mode's saga workers must not run beside these
    cdc("workers", "start", "--mode", mode)
    ok = _order(stack_env, f"{unique}-ok", credit="1000")
    refused = _order(stack_env, f"{unique}-no", credit="5")  # the card is over its limit: compensate
    assert _ended(stack_env, ok) == ("COMPLETED", "APPROVED"), f"{mode}: order {ok}"
    assert _ended(stack_env, refused) == ("COMPENSATED", "REJECTED"), f"{mode}: order {refused}"
