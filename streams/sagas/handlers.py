"""What each participant does for each saga command, inside the transaction the participant
runtime opened (inbox row and reply are written beside it). A handler that refuses returns
a reason and changes nothing; failures come from data, as in life."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

import psycopg

from schemas.saga import SagaCommand

Outcome = str | None  # None: succeeded; a string: failed, with the reason
Handler = Callable[[psycopg.AsyncConnection, SagaCommand], Awaitable[Outcome]]

INVOICE_LIMIT = Decimal("5000.00")        # invoicing: larger invoices need manual approval
NOT_SERVED = frozenset({"AQ", "KP"})      # shipping: countries the carrier does not serve
REFUND_LIMIT = Decimal("10000.00")        # payments: larger refunds need a person


async def charge_payment(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    p = cmd.payload
    if Decimal(p["total"]) > Decimal(p["credit_limit"]):
        return f"card over its limit: {p['total']} > {p['credit_limit']}"
    await conn.execute("INSERT INTO payments (orders_order_id, orders_customer_id, amount, status, saga_id) "
                       "VALUES (%s, %s, %s, 'CHARGED', %s)", (p["order_id"], p["customer_id"], p["total"], cmd.saga_id))
    return None


async def refund_payment(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    if Decimal(cmd.payload["total"]) > REFUND_LIMIT:
        return f"refunds over {REFUND_LIMIT} need a person"
    await conn.execute("UPDATE payments SET status = 'REFUNDED', refunded_at = clock_timestamp() "
                       "WHERE saga_id = %s AND status = 'CHARGED'", (cmd.saga_id,))
    return None


async def reserve_stock(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    items = sorted(cmd.payload["items"], key=lambda i: i["sku"])  # one lock order: no deadlocks
    for item in items:
        cur = await conn.execute("SELECT on_hand FROM stock_items WHERE sku = %s FOR UPDATE", (item["sku"],))
        row = await cur.fetchone()
        if row is None or row[0] < item["quantity"]:
            return f"not enough stock of {item['sku']}: {row[0] if row else 0} < {item['quantity']}"
    for item in items:
        await conn.execute("UPDATE stock_items SET on_hand = on_hand - %s, reserved = reserved + %s WHERE sku = %s",
                           (item["quantity"], item["quantity"], item["sku"]))
        await conn.execute("INSERT INTO stock_reservations (saga_id, sku, quantity, status) VALUES (%s, %s, %s, 'RESERVED')",
                           (cmd.saga_id, item["sku"], item["quantity"]))
    return None


async def release_stock(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    cur = await conn.execute("UPDATE stock_reservations SET status = 'RELEASED', changed_at = clock_timestamp() "
                             "WHERE saga_id = %s AND status = 'RESERVED' RETURNING sku, quantity", (cmd.saga_id,))
    for sku, quantity in await cur.fetchall():
        await conn.execute("UPDATE stock_items SET on_hand = on_hand + %s, reserved = reserved - %s WHERE sku = %s",
                           (quantity, quantity, sku))
    return None


async def issue_invoice(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    p = cmd.payload
    if Decimal(p["total"]) > INVOICE_LIMIT:
        return f"invoices over {INVOICE_LIMIT} need manual approval"
    await conn.execute("INSERT INTO invoices (orders_order_id, orders_customer_id, amount, status, saga_id) "
                       "VALUES (%s, %s, %s, 'ISSUED', %s)", (p["order_id"], p["customer_id"], p["total"], cmd.saga_id))
    return None


async def cancel_invoice(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    await conn.execute("UPDATE invoices SET status = 'CANCELLED', changed_at = clock_timestamp() "
                       "WHERE saga_id = %s AND status = 'ISSUED'", (cmd.saga_id,))
    return None


async def schedule_shipment(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    p = cmd.payload
    if p["country"] in NOT_SERVED:
        return f"the carrier does not serve {p['country']}"
    await conn.execute("INSERT INTO shipments (orders_order_id, orders_customer_id, status, saga_id, country) "
                       "VALUES (%s, %s, 'SCHEDULED', %s, %s)", (p["order_id"], p["customer_id"], cmd.saga_id, p["country"]))
    return None


async def cancel_shipment(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    await conn.execute("UPDATE shipments SET status = 'CANCELLED', changed_at = clock_timestamp() "
                       "WHERE saga_id = %s AND status = 'SCHEDULED'", (cmd.saga_id,))
    return None


async def approve_order(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    await conn.execute("UPDATE orders SET status = 'APPROVED', updated_at = now() WHERE id = %s AND status = 'PENDING'",
                       (cmd.payload["order_id"],))
    return None


async def reject_order(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    await conn.execute("UPDATE orders SET status = 'REJECTED', updated_at = now() WHERE id = %s AND status = 'PENDING'",
                       (cmd.payload["order_id"],))
    return None


# participant -> command -> handler: the routing table, read top to bottom
HANDLERS: dict[str, dict[str, Handler]] = {
    "payments": {"ChargePayment": charge_payment, "RefundPayment": refund_payment},
    "inventory": {"ReserveStock": reserve_stock, "ReleaseStock": release_stock},
    "invoicing": {"IssueInvoice": issue_invoice, "CancelInvoice": cancel_invoice},
    "shipping": {"ScheduleShipment": schedule_shipment, "CancelShipment": cancel_shipment},
    "orders": {"ApproveOrder": approve_order, "RejectOrder": reject_order},
}
