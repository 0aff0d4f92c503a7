"""The inventory service's saga handlers: reserve and release stock."""
from __future__ import annotations

import psycopg

from schemas.saga import SagaCommand
from streams.sagas.handlers import Handler, Outcome


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


HANDLERS: dict[str, Handler] = {
    "ReserveStock": reserve_stock,
    "ReleaseStock": release_stock,
}
