"""Housekeeping of a saga worker's database: outbox rows are deleted once Debezium has
published them, inbox (and finished watch) rows once no topic can deliver their messages again.

Published means: the connector's replication slot has confirmed a WAL position past the row's
commit. A row's commit LSN is not stored, so each run leaves a mark (the WAL position now, and
the time); once the slot confirms a mark, every row committed before that mark's time (with a
margin) is published. Commit times come from `track_commit_timestamp`; a row without one is kept.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

MARGIN_S = 1.0            # commit timestamps are taken just before the commit record is written
BATCH = 10_000


def lsn(text: str) -> int:
    """'16/B374D848' -> an integer that sorts like the LSN."""
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def purge_horizon(marks: deque[tuple[int, datetime]], confirmed: int | None) -> datetime | None:
    """The newest mark the slot has confirmed (older marks are dropped); None: nothing is safe yet."""
    if confirmed is None:
        return None
    horizon = None
    while marks and marks[0][0] <= confirmed:
        horizon = marks.popleft()[1]
    if horizon is not None:
        marks.appendleft((0, horizon))  # keep it: the next run may confirm nothing newer
    return horizon


@dataclass
class Housekeeping:
    slot: str                       # the service's connector slot (cdc_<service>)
    inbox_keep_s: float | None      # None: the topics keep messages forever, so the inbox too
    marks: deque[tuple[int, datetime]] = field(default_factory=deque)
    runs: int = 0
    outbox_purged: int = 0
    inbox_purged: int = 0

    async def run(self, conn: psycopg.AsyncConnection) -> None:
        async with conn.transaction():
            cur = await conn.execute("SELECT pg_current_wal_lsn()::text, clock_timestamp(), (SELECT confirmed_flush_lsn::text "
                                     "FROM pg_replication_slots WHERE slot_name = %s)", (self.slot,))
            row = await cur.fetchone()
            assert row is not None
            now_lsn, now, confirmed = row
            self.marks.append((lsn(now_lsn), now))
            horizon = purge_horizon(self.marks, lsn(confirmed) if confirmed else None)
            if horizon is not None:
                cur = await conn.execute(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE "
                    "pg_xact_commit_timestamp(xmin) < %s::timestamptz - make_interval(secs => %s) LIMIT %s)",
                    (horizon, MARGIN_S, BATCH))
                self.outbox_purged += cur.rowcount
            if self.inbox_keep_s is not None:
                for table, column, extra in (("saga_inbox", "handled_at", ""),
                                             ("saga_watches", "updated_at", " AND state <> 'waiting'"),
                                             ("saga_monitor_seen", "seen_at", "")):
                    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
                    exists = await cur.fetchone()
                    if exists and exists[0]:
                        cur = await conn.execute(f"DELETE FROM {table} WHERE {column} < now() - "  # noqa: S608 - fixed names
                                                 f"make_interval(secs => %s){extra}", (self.inbox_keep_s,))
                        self.inbox_purged += cur.rowcount
        self.runs += 1

    def stats(self) -> dict[str, int]:
        return {"runs": self.runs, "outbox_purged": self.outbox_purged, "inbox_purged": self.inbox_purged}
