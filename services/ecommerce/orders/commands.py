"""The orders service's own command: place an order. The order (PENDING), its items and the
OrderPlaced event are one local transaction; the place-order saga starts from that event."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import psycopg

from services import outbox
from services.ecommerce.orders.events import CUSTOMER_AGGREGATE, ORDER_AGGREGATE


@dataclass(frozen=True)
class OrderLine:
    sku: str
    quantity: int
    unit_price: Decimal


def register_customer(conn: psycopg.Connection, name: str, email: str, country: str = "ES",
                      credit_limit: Decimal = Decimal("1000"), document_number: str | None = None,
                      phone: str | None = None) -> int:
    """The customer and its CustomerRegistered event, one transaction (no private field in the event)."""
    with conn.transaction():
        row = conn.execute("INSERT INTO customers (name, email, country, credit_limit, document_number, phone) "
                           "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                           (name, email, country, credit_limit, document_number, phone)).fetchone()
        assert row is not None
        customer_id = int(row[0])
        outbox.write(conn, CUSTOMER_AGGREGATE, str(customer_id), "CustomerRegistered",
                     {"customer_id": customer_id, "name": name, "country": country})
    return customer_id


def place_order(conn: psycopg.Connection, customer_id: int, lines: list[OrderLine], country: str) -> int:
    total = sum((line.unit_price * line.quantity for line in lines), Decimal("0"))
    with conn.transaction():
        row = conn.execute("SELECT credit_limit FROM customers WHERE id = %s", (customer_id,)).fetchone()
        if row is None:
            raise ValueError(f"no customer {customer_id}")
        order = conn.execute("INSERT INTO orders (customer_id, total, country) VALUES (%s, %s, %s) RETURNING id",
                             (customer_id, total, country)).fetchone()
        assert order is not None
        order_id = int(order[0])
        for line in lines:
            conn.execute("INSERT INTO order_items (order_id, sku, quantity, unit_price) VALUES (%s, %s, %s, %s)",
                         (order_id, line.sku, line.quantity, line.unit_price))
        outbox.write(conn, ORDER_AGGREGATE, str(order_id), "OrderPlaced", {
            "order_id": order_id, "customer_id": customer_id, "total": str(total), "country": country,
            "credit_limit": str(row[0]),
            "items": [{"sku": li.sku, "quantity": li.quantity, "unit_price": str(li.unit_price)} for li in lines],
        })
    return order_id
