"""The invoicing service's saga handlers: issue and cancel an invoice."""
from __future__ import annotations

from decimal import Decimal

import psycopg

from schemas.saga import SagaCommand
from streams.sagas.handlers import Handler, Outcome

INVOICE_LIMIT = Decimal("5000.00")        # larger invoices need manual approval


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


HANDLERS: dict[str, Handler] = {
    "IssueInvoice": issue_invoice,
    "CancelInvoice": cancel_invoice,
}
