"""Durable saga timeouts in the saga store: any orchestrator worker may scan them, and FOR UPDATE
SKIP LOCKED hands each due saga to exactly one of them."""
from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from services.ecommerce.place_order import PLACE_ORDER
from services.registry import SAGA_STORE
from streams.sagas import orchestrator

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]

PAYLOAD = {"order_id": 1, "customer_id": 2, "total": "5.00", "credit_limit": "10.00", "country": "ES",
           "items": [{"sku": "A", "quantity": 1}]}
SAGAS = 60


async def start_due_sagas(dsn: str, tag: str, started_at: float) -> list[str]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        ids = [await orchestrator.start(conn, PLACE_ORDER, f"{tag}-{i}", PAYLOAD, started_at) for i in range(SAGAS)]
    assert all(ids)
    return [i for i in ids if i]


def timed_out(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT saga_id::text, count(*) FROM saga_events WHERE kind = 'timed_out' "
                            "GROUP BY saga_id").fetchall()
    return dict(rows)


def test_two_orchestrators_scanning_concurrently_handle_every_due_saga_exactly_once(fresh_db):
    # rule: a due saga is locked by the scan that takes it; the other scan skips it (never twice)
    dsn = fresh_db(SAGA_STORE)
    now = time.time()
    ids = asyncio.run(start_due_sagas(dsn, "race", now - 3600))  # every first command long overdue

    async def orchestrator_worker() -> int:
        handled = 0
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            while n := await orchestrator.scan_timeouts(conn, PLACE_ORDER, now, limit=7):
                handled += n
        return handled

    async def two() -> tuple[int, ...]:
        return tuple(await asyncio.gather(orchestrator_worker(), orchestrator_worker()))

    handled = asyncio.run(two())
    assert sum(handled) == SAGAS
    assert timed_out(dsn) == dict.fromkeys(ids, 1), "every due saga timed out exactly once"


def test_a_scan_skips_the_sagas_another_orchestrator_holds_instead_of_waiting_or_repeating_them(fresh_db):
    # rule: SKIP LOCKED: while one orchestrator's scan holds some due sagas, another takes the rest
    # at once (no wait: lock_timeout would fail it) and never those
    dsn = fresh_db(SAGA_STORE)
    now = time.time()
    ids = asyncio.run(start_due_sagas(dsn, "held", now - 3600))

    async def run() -> tuple[int, int]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as a, \
                await psycopg.AsyncConnection.connect(dsn, autocommit=True) as b:
            await b.execute("SET lock_timeout = '2s'")
            async with a.transaction():  # A's scan is done but not committed: it still holds its sagas
                held = await orchestrator.scan_timeouts(a, PLACE_ORDER, now, limit=10)
                rest = await orchestrator.scan_timeouts(b, PLACE_ORDER, now, limit=SAGAS)
            return held, rest

    held, rest = asyncio.run(run())
    assert (held, rest) == (10, SAGAS - 10)
    assert timed_out(dsn) == dict.fromkeys(ids, 1)
