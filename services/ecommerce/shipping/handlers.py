"""The shipping service's saga handlers: schedule and cancel a shipment."""
from __future__ import annotations

import psycopg

from schemas.saga import SagaCommand
from streams.sagas.handlers import Handler, Outcome

NOT_SERVED = frozenset({"AQ", "KP"})      # countries the carrier does not serve


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


HANDLERS: dict[str, Handler] = {
    "ScheduleShipment": schedule_shipment,
    "CancelShipment": cancel_shipment,
}
