"""Shared by the saga tests: placing orders with data that fails where we want, waiting for a
saga to end, reading each participant's own records, and starting the workers of a mode."""
from __future__ import annotations

import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg

from cdc_testing.polling import poll
from cdc_testing.workers import WorkerProcess, diagnose
from observe.replication import pg_lsn
from services.ecommerce.orders.commands import OrderLine, place_order
from services.ecommerce.place_order import PLACE_ORDER_SAGA
from streams.sagas.worker import COORDINATOR, MODES

# the place-order saga's participant services, each with a saga worker
PARTICIPANTS = PLACE_ORDER_SAGA.participants
__all__ = ["MODES", "PARTICIPANTS", "coordinator", "saga_workers_of", "one", "rows", "order", "finish", "records",
           "wait_captured", "timeout_scale"]


def coordinator(mode: str) -> str:
    """orchestrator (drives the sagas) or monitor (records the choreographed ones)."""
    return COORDINATOR[mode]


def saga_workers_of(mode: str, env: dict[str, str], log_dir: Path, names: tuple[str, ...] | None = None,
                    extra_env: dict[str, str] | None = None) -> dict[str, WorkerProcess]:
    names = names if names is not None else (coordinator(mode), *PARTICIPANTS)
    return {n: saga_worker(n, mode, env, log_dir, extra_env) for n in names}


def saga_worker(name: str, mode: str, env: dict[str, str], log_dir: Path,
                extra_env: dict[str, str] | None = None) -> WorkerProcess:
    return WorkerProcess(name, env, log_dir, saga=True, extra_env={"CDC_SAGA_MODE": mode, **(extra_env or {})})


def one(url: str, query: str, params: tuple = ()) -> tuple | None:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchone()


def rows(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def order(env, unique: str, credit: str, quantity: int, price: str, country: str = "ES",
          on_hand: int = 10) -> tuple[int, str]:
    sku = f"SKU-{unique}"
    with psycopg.connect(env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO stock_items (sku, on_hand) VALUES (%s, %s)", (sku, on_hand))
    with psycopg.connect(env["ORDERS_DATABASE_URL"]) as conn:
        row = conn.execute("INSERT INTO customers (name, email, credit_limit) VALUES (%s, %s, %s) RETURNING id",
                           (f"saga-{unique}", f"{unique}@example.org", credit)).fetchone()
        assert row is not None
        conn.commit()
        order_id = place_order(conn, row[0], [OrderLine(sku, quantity, Decimal(price))], country)
    return order_id, sku


def finish(env, order_id: int, timeout: float = 90) -> tuple[str, str]:
    """Wait until the saga ended; returns (saga state, order status)."""
    try:
        state = poll(lambda: one(env["ORCHESTRATOR_OBSERVER_URL"], "SELECT state, reason FROM saga_instances "
                                 "WHERE payload->>'order_id' = %s", (str(order_id),)),
                     lambda row: row is not None and row[0] in ("COMPLETED", "COMPENSATED", "FAILED"), timeout,
                     f"the saga of order {order_id} to end")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnose()}") from None
    status = one(env["ORDERS_OBSERVER_URL"], "SELECT status FROM orders WHERE id = %s", (order_id,))
    assert status is not None
    return state[0], status[0]


def records(env, order_id: int, sku: str) -> dict:
    return {
        "payments": rows(env["PAYMENTS_OBSERVER_URL"], "SELECT status, amount FROM payments WHERE orders_order_id = %s",
                         (order_id,)),
        "stock": one(env["INVENTORY_OBSERVER_URL"], "SELECT on_hand, reserved FROM stock_items WHERE sku = %s", (sku,)),
        "reservations": rows(env["INVENTORY_OBSERVER_URL"], "SELECT status, quantity FROM stock_reservations WHERE sku = %s",
                             (sku,)),
        "invoices": rows(env["INVOICING_OBSERVER_URL"], "SELECT status FROM invoices WHERE orders_order_id = %s",
                         (order_id,)),
        "shipments": rows(env["SHIPPING_OBSERVER_URL"], "SELECT status FROM shipments WHERE orders_order_id = %s",
                          (order_id,)),
    }


def wait_captured(env, service: str, timeout: float = 60) -> None:
    """Wait until the service's connector confirmed everything committed there so far: every
    message its outbox holds now is on its topic."""
    url = env[f"{service.upper()}_OBSERVER_URL"]
    now = one(url, "SELECT pg_current_wal_lsn()::text")
    assert now is not None
    poll(lambda: one(url, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
                     (f"cdc_{service}",)),
         lambda r: r is not None and (pg_lsn(r[0]) or 0) >= (pg_lsn(now[0]) or 0), timeout,
         f"the {service} connector to confirm WAL position {now[0]}")


def capture_hop(env) -> float:
    """Seconds from a committed row to its change event on the topic: one hop of a saga message
    (service outbox -> Debezium -> Kafka), measured now."""
    from cdc_testing.events import TopicReader
    from stack.kafka_client import ADMIN, access

    reader = TopicReader(access(env, ADMIN), ["orders.public.customers"])
    try:
        started = time.monotonic()
        with psycopg.connect(env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
            row = conn.execute("INSERT INTO customers (name, email) VALUES ('hop', %s) RETURNING id",
                               (f"hop-{uuid.uuid4().hex[:10]}@example.org",)).fetchone()
        assert row is not None
        key = f'{{"id":{row[0]}}}'.encode()
        reader.wait_for(lambda m: m.key() == key, 1, 120, "the probe row's change event")
        return time.monotonic() - started
    finally:
        reader.close()


def worker_start(env, log_dir: Path) -> float:
    """Seconds from launching a saga worker to its being healthy with partitions, measured now."""
    started = time.monotonic()
    w = saga_worker("payments", "orchestration", env, log_dir)
    try:
        w.wait_healthy(300)
        return time.monotonic() - started
    finally:
        w.stop()


def timeout_scale(env, log_dir: Path, quickest: float = 0.1) -> float:
    """A CDC_SAGA_TIMEOUT_SCALE for tests that wait on step timeouts: `quickest` (1 s steps) on
    a quiet box, more when the box is slow, so that only the test's own outage times out: a
    step's round trip (two hops and the handling) stays well inside its timeout, and a worker
    the test restarts is back well inside a compensation's retries (250 s x scale of them: 25 s
    at 0.1; about four start-ups at start-up / 60)."""
    hop = max(capture_hop(env) for _ in range(3))
    return round(min(3.0, max(quickest, 0.6 * hop, worker_start(env, log_dir) / 60)), 2)
