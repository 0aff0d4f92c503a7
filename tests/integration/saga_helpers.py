"""Shared by the saga tests: placing orders with data that fails where we want, waiting for a
saga to end, reading each participant's own records, and starting the workers of a mode."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import psycopg

from observe.replication import pg_lsn
from services.ecommerce.orders.commands import OrderLine, place_order
from services.ecommerce.place_order import PLACE_ORDER_SAGA
from streams.sagas.worker import COORDINATOR, MODES
from tests.integration.workers import WorkerProcess, diagnose
from tests.polling import poll

# the place-order saga's participant services, each with a saga worker
PARTICIPANTS = PLACE_ORDER_SAGA.participants
__all__ = ["MODES", "PARTICIPANTS", "coordinator", "saga_workers_of", "one", "rows", "order", "finish", "records",
           "wait_captured"]


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


def finish(env, order_id: int) -> tuple[str, str]:
    """Wait until the saga ended; returns (saga state, order status)."""
    try:
        state = poll(lambda: one(env["ORCHESTRATOR_OBSERVER_URL"], "SELECT state, reason FROM saga_instances "
                                 "WHERE payload->>'order_id' = %s", (str(order_id),)),
                     lambda row: row is not None and row[0] in ("COMPLETED", "COMPENSATED", "FAILED"), 90,
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
