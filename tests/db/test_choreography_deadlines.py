"""A choreographed participant's due watches in its own database: a delayed pipeline moves the
deadline (a `delay` event in the outbox, no attempt spent), an ask its connector has not captured
is a delay too, a healthy pipeline resends as before, and a watch scan that was away moves every
waiting deadline by its gap."""
from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from services.ecommerce.place_order import PLACE_ORDER
from streams.sagas import choreography_runtime as runtime
from streams.sagas.choreography import Watch
from streams.sagas.enabled import enabled

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]

ASKER = PLACE_ORDER.steps[1].participant       # payments asks...
ASKED = PLACE_ORDER.steps[2].participant       # ...inventory to reserve stock
STEP = 2


async def _with(dsn: str, work) -> object:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        return await work(conn)


def _watching(dsn: str, saga_id: str, deadline: float, sent: bool = True) -> None:
    w = Watch(saga_id, STEP, "action", 1, deadline, {"order_id": 1})

    async def save(conn) -> None:
        async with conn.transaction():  # as _publish_outcome does, after writing the ask
            position = await runtime._wal_position(conn, "cdc_payments") if sent else None
            await runtime._save_watch(conn, PLACE_ORDER, w, sent_lsn=position)

    asyncio.run(_with(dsn, save))


def _state(dsn: str, saga_id: str) -> tuple[int, float, list[str]]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT attempt, extract(epoch FROM deadline) FROM saga_watches WHERE saga_id = %s",
                           (saga_id,)).fetchone()
        kinds = [r[0] for r in conn.execute("SELECT type FROM outbox WHERE aggregateid = %s ORDER BY type",
                                            (saga_id,)).fetchall()]
    assert row is not None
    return row[0], float(row[1]), kinds


def _me(slot: str | None = None) -> runtime.Participant:
    return runtime.Participant(enabled(), ASKER, slot)


def test_a_delayed_pipeline_moves_the_watch_and_a_healthy_one_resends(fresh_db):
    dsn = fresh_db(ASKER)
    now = time.time()
    _watching(dsn, "delayed", now - 5)
    me = _me()
    assert asyncio.run(_with(dsn, lambda c: me.due_asked(c, now))) == {ASKED}
    why = "capture not running: inventory-source PAUSED/PAUSED"
    asyncio.run(_with(dsn, lambda c: me.scan_watches(c, now, delays={ASKED: why})))
    attempt, deadline, kinds = _state(dsn, "delayed")
    assert attempt == 1 and deadline > now and kinds == ["SagaDelay"], (attempt, deadline, kinds)
    _watching(dsn, "healthy", now - 5)
    asyncio.run(_with(dsn, lambda c: me.scan_watches(c, now, delays={ASKED: None})))
    attempt, _, kinds = _state(dsn, "healthy")
    assert attempt == 2 and kinds == ["SagaResend"], (attempt, kinds)


def test_an_ask_its_connector_has_not_captured_is_a_delay(fresh_db):
    dsn = fresh_db(ASKER)  # the database tier has no replication slot: nothing is ever confirmed
    now = time.time()
    _watching(dsn, "uncaptured", now - 5)
    asyncio.run(_with(dsn, lambda c: _me("cdc_payments").scan_watches(c, now, delays={ASKED: None})))
    attempt, _, kinds = _state(dsn, "uncaptured")
    assert attempt == 1 and kinds == ["SagaDelay"], (attempt, kinds)
    # a watch on an event read back from its topic (no WAL position kept) was captured by definition
    _watching(dsn, "read-back", now - 5, sent=False)
    asyncio.run(_with(dsn, lambda c: _me("cdc_payments").scan_watches(c, now, delays={ASKED: None})))
    assert _state(dsn, "read-back")[0] == 2


def test_a_watch_scan_that_was_away_moves_every_waiting_deadline_by_the_gap(fresh_db):
    dsn = fresh_db(ASKER)
    now = time.time()
    _watching(dsn, "away", now + 1)
    before = _state(dsn, "away")[1]
    # the scan is back 91 s on, after 90 s away: the watch was set before it left
    assert asyncio.run(_with(dsn, lambda c: _me().shift_watches(c, 90.0, now + 91))) == 1
    attempt, after, kinds = _state(dsn, "away")
    assert attempt == 1 and after == pytest.approx(before + 90.0, abs=0.01) and kinds == ["SagaDelay"]
