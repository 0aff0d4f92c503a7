"""The e-commerce part of `make demo`: customers registered and orders placed through the orders
service's own commands (state + outbox, one transaction each), their captured events, the
customers replicated into inventory, invoicing and shipping, and a batch of place-order sagas,
some failing at different steps because of their data."""
from __future__ import annotations

import os
from decimal import Decimal

import psycopg
from rich.table import Table

from cli.demo_cmd import show_captured, show_replication, show_timeline, wait_sagas
from services.ecommerce.orders.commands import OrderLine, place_order, register_customer
from services.registry import DemoContext

ROW_TOPICS = ["orders.public.customers", "orders.public.orders", "orders.public.order_items"]
OUTBOX_TOPICS = ["outbox.event.customer", "outbox.event.order"]
PAIRS = ["customers-to-inventory", "customers-to-invoicing", "customers-to-shipping"]
# (what happens, credit limit, quantity, unit price, country)
ORDERS = [
    ("succeeds", "1000", 2, "10.00", "ES"),
    ("succeeds", "1000", 1, "99.00", "GB"),
    ("card over its limit", "5", 2, "10.00", "ES"),
    ("not enough stock", "1000", 500, "1.00", "ES"),
    ("invoice needs approval", "100000", 3, "2000.00", "FR"),
    ("carrier does not serve AQ", "1000", 1, "10.00", "AQ"),
]


def run(ctx: DemoContext) -> None:
    sku = f"DEMO-{ctx.tag}"
    with psycopg.connect(ctx.env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO stock_items (sku, on_hand) VALUES (%s, 100)", (sku,))
    show_captured(ctx, ROW_TOPICS, OUTBOX_TOPICS, lambda: _register_and_order(ctx, sku))
    show_replication(ctx, PAIRS)
    _sagas(ctx, sku)


def _register_and_order(ctx: DemoContext, sku: str) -> int:
    """Three customers, each with one order and then a new address: 6 captured changes each
    (customer row + event, order + item + event, the address update)."""
    with psycopg.connect(ctx.env["ORDERS_DATABASE_URL"]) as conn:
        for i, (name, country) in enumerate([("Ada Lovelace", "GB"), ("Grace Hopper", "US"),
                                             ("Rosalind Franklin", "GB")]):
            cid = register_customer(conn, name, f"{ctx.tag}-{i}@example.org", country,
                                    document_number=f"DOC-{ctx.tag}-{i}", phone="+1-555-0100")
            place_order(conn, cid, [OrderLine(sku, 1, Decimal("42.50"))], country)
            with conn.transaction():
                conn.execute("UPDATE customers SET address = %s, updated_at = now() WHERE id = %s", (f"{i} Demo Street", cid))
    return 3 * 6


def _sagas(ctx: DemoContext, sku: str) -> None:
    placed = []
    with psycopg.connect(ctx.env["ORDERS_DATABASE_URL"]) as conn:
        for i, (story, credit, qty, price, country) in enumerate(ORDERS):
            cid = register_customer(conn, f"Buyer {i}", f"buyer-{ctx.tag}-{i}@example.org", country, Decimal(credit))
            placed.append((story, str(place_order(conn, cid, [OrderLine(sku, qty, Decimal(price))], country))))
    mode = os.environ.get("CDC_SAGA_MODE", "orchestration")
    how = ("an orchestrator drives each saga" if mode == "orchestration"
           else "choreographed: each participant reacts to its neighbours' events")
    ctx.out.print(f"placed {len(placed)} orders; place-order sagas through payments, inventory, invoicing, shipping: "
                  f"{how} (CDC_SAGA_MODE={mode})")
    ids = [order_id for _, order_id in placed]
    states = wait_sagas(ctx, "place-order", ids)
    with psycopg.connect(ctx.env["ORDERS_OBSERVER_URL"]) as conn:
        status: dict[str, str] = dict(conn.execute("SELECT id::text, status FROM orders WHERE id::text = ANY(%s)",
                                                   (ids,)).fetchall())
    table = Table("order", "expected", "saga", "order status", title="place-order sagas")
    for story, order_id in placed:
        table.add_row(order_id, story, states.get(order_id, "-"), status.get(order_id, "-"))
    ctx.out.print(table)
    shown = next(order_id for story, order_id in placed if "carrier" in story)
    show_timeline(ctx, shown, f"order {shown}'s saga")
    if not all(states.get(i) in ("COMPLETED", "COMPENSATED") for i in ids):
        ctx.out.print("[red]some sagas did not end[/red]")
        raise SystemExit(1)
    ctx.out.print("[green]every saga ended[/green]: approved, or compensated in reverse order and rejected")
