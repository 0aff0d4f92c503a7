"""The payments service's saga handlers: charge and refund."""
from __future__ import annotations

from decimal import Decimal

import psycopg

from schemas.saga import SagaCommand
from streams.sagas.handlers import Handler, Outcome

DEFAULT_REFUND_LIMIT = Decimal("10000.00")  # larger refunds need a person; payment_limits holds the current one


async def charge_payment(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    p = cmd.payload
    if Decimal(p["total"]) > Decimal(p["credit_limit"]):
        return f"card over its limit: {p['total']} > {p['credit_limit']}"
    await conn.execute("INSERT INTO payments (orders_order_id, orders_customer_id, amount, status, saga_id) "
                       "VALUES (%s, %s, %s, 'CHARGED', %s)", (p["order_id"], p["customer_id"], p["total"], cmd.saga_id))
    return None


async def refund_limit(conn: psycopg.AsyncConnection) -> Decimal:
    cur = await conn.execute("SELECT amount FROM payment_limits WHERE name = 'refund'")
    row = await cur.fetchone()
    return Decimal(row[0]) if row else DEFAULT_REFUND_LIMIT


async def refund_payment(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    limit = await refund_limit(conn)
    if Decimal(cmd.payload["total"]) > limit:
        return f"refunds over {limit} need a person"
    await conn.execute("UPDATE payments SET status = 'REFUNDED', refunded_at = clock_timestamp() "
                       "WHERE saga_id = %s AND status = 'CHARGED'", (cmd.saga_id,))
    return None


HANDLERS: dict[str, Handler] = {
    "ChargePayment": charge_payment,
    "RefundPayment": refund_payment,
}
