"""The saga part of `cdc demo`: a batch of orders, some failing at different steps because of
their data, their outcomes, and the timeline of one compensated saga."""
from __future__ import annotations

import os
import time
from decimal import Decimal

import psycopg
from rich.console import Console
from rich.table import Table

from observe.sagas import timeline
from services.orders.commands import OrderLine, place_order

# (what happens, credit limit, quantity, unit price, country)
ORDERS = [
    ("succeeds", "1000", 2, "10.00", "ES"),
    ("succeeds", "1000", 1, "99.00", "GB"),
    ("card over its limit", "5", 2, "10.00", "ES"),
    ("not enough stock", "1000", 500, "1.00", "ES"),
    ("invoice needs approval", "100000", 3, "2000.00", "FR"),
    ("carrier does not serve AQ", "1000", 1, "10.00", "AQ"),
]


def run(env: dict[str, str], tag: str, out: Console, timeout: float = 90.0) -> None:
    sku = f"DEMO-{tag}"
    with psycopg.connect(env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO stock_items (sku, on_hand) VALUES (%s, 100)", (sku,))
    placed = []
    with psycopg.connect(env["ORDERS_DATABASE_URL"]) as conn:
        for i, (story, credit, qty, price, country) in enumerate(ORDERS):
            row = conn.execute("INSERT INTO customers (name, email, credit_limit) VALUES (%s, %s, %s) RETURNING id",
                               (f"Buyer {i}", f"buyer-{tag}-{i}@example.org", credit)).fetchone()
            assert row is not None
            conn.commit()
            placed.append((story, place_order(conn, row[0], [OrderLine(sku, qty, Decimal(price))], country)))
    mode = os.environ.get("CDC_SAGA_MODE", "orchestration")
    how = ("an orchestrator drives each saga" if mode == "orchestration"
           else "choreographed: each participant reacts to its neighbours' events")
    out.print(f"placed {len(placed)} orders; place-order sagas through payments, inventory, invoicing, shipping: "
              f"{how} (CDC_SAGA_MODE={mode})")
    ids = [str(order_id) for _, order_id in placed]
    deadline = time.monotonic() + timeout
    with out.status("waiting for every saga to end"), psycopg.connect(env["ORCHESTRATOR_OBSERVER_URL"]) as conn:
        while True:
            states: dict[str, str] = dict(conn.execute("SELECT payload->>'order_id', state FROM saga_instances "
                                       "WHERE payload->>'order_id' = ANY(%s)", (ids,)).fetchall())
            conn.commit()
            if all(states.get(i) in ("COMPLETED", "COMPENSATED", "FAILED") for i in ids) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    with psycopg.connect(env["ORDERS_OBSERVER_URL"]) as conn:
        rows = conn.execute("SELECT id::text, status FROM orders WHERE id::text = ANY(%s)", (ids,)).fetchall()
        status: dict[str, str] = dict(rows)
    table = Table("order", "expected", "saga", "order status", title="place-order sagas")
    for story, order_id in placed:
        table.add_row(str(order_id), story, states.get(str(order_id), "-"), status.get(str(order_id), "-"))
    out.print(table)
    shown = next(order_id for story, order_id in placed if "carrier" in story)
    events = timeline(env["ORCHESTRATOR_OBSERVER_URL"], str(shown))
    tl = Table("at", "event", "step", "action", "detail", title=f"timeline of order {shown}'s saga (cdc observe saga {shown})")
    for at, kind, step, action, detail in events:
        tl.add_row(at.strftime("%H:%M:%S.%f")[:-3], kind, step or "", action or "", detail or "")
    out.print(tl)
    if not all(states.get(i) in ("COMPLETED", "COMPENSATED") for i in ids):
        out.print("[red]some sagas did not end[/red]")
        raise SystemExit(1)
    out.print("[green]every saga ended[/green]: approved, or compensated in reverse order and rejected")
