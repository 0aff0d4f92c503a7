"""Wait, in a db-tier test, until one transaction waits on another's lock (polled with a deadline)."""
from __future__ import annotations

import asyncio
import time

import psycopg


async def wait_until_blocked(watcher: psycopg.AsyncConnection, pid: int, task: asyncio.Task, what: str) -> None:
    """Until backend `pid` waits on a lock, or `task` (its work) has finished; fails after 10 s."""
    deadline = time.monotonic() + 10
    while not task.done():
        cur = await watcher.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,))
        row = await cur.fetchone()
        if row is not None and row[0] == "Lock":
            return
        assert time.monotonic() < deadline, f"expected {what} to wait on a lock or finish within 10s; it did neither"
        await asyncio.sleep(0.02)   # the poll's interval, not a wait for the condition
