"""The orders service's saga handlers: approve (the pivot) or reject its order."""
from __future__ import annotations

import psycopg

from schemas.saga import SagaCommand
from streams.sagas.handlers import Handler, Outcome


async def approve_order(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    await conn.execute("UPDATE orders SET status = 'APPROVED', updated_at = now() WHERE id = %s AND status = 'PENDING'",
                       (cmd.payload["order_id"],))
    return None


async def reject_order(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> Outcome:
    await conn.execute("UPDATE orders SET status = 'REJECTED', updated_at = now() WHERE id = %s AND status = 'PENDING'",
                       (cmd.payload["order_id"],))
    return None


HANDLERS: dict[str, Handler] = {
    "ApproveOrder": approve_order,
    "RejectOrder": reject_order,
}
