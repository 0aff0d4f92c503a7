"""The timeout scanner's own downtime, kept in its database (a restarted process remembers): each
scan ticks; a scan that finds the last tick older than the grace was away, and every pending
deadline of its kind moves by the gap (`deadlines.downtime`)."""
from __future__ import annotations

import psycopg

from streams.sagas.deadlines import downtime

GRACE_S = 3.0  # scans run every 0.5 s; a gap below this is a slow tick, not an outage


async def tick(conn: psycopg.AsyncConnection, scanner: str, now: float, grace: float = GRACE_S) -> float:
    """Record this scan (in the caller's transaction); returns the seconds the scanner was away."""
    cur = await conn.execute("SELECT extract(epoch FROM ticked_at) FROM saga_clock WHERE scanner = %s FOR UPDATE",
                             (scanner,))
    row = await cur.fetchone()
    await conn.execute("INSERT INTO saga_clock (scanner, ticked_at) VALUES (%s, to_timestamp(%s)) "
                       "ON CONFLICT (scanner) DO UPDATE SET ticked_at = greatest(saga_clock.ticked_at, "
                       "EXCLUDED.ticked_at)", (scanner, now))
    return downtime(float(row[0]) if row else None, now, grace)
