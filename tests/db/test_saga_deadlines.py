"""Deadlines that know about the pipeline, in the saga store's SQL: a due saga whose participant's
pipeline is delayed gets its deadline moved (timeline: infrastructure delay), one whose pipeline is
healthy times out (timeline: participant timeout), a business deadline is never moved, and an
orchestrator that was away moves every pending deadline by the gap."""
from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from services.ecommerce.place_order import PLACE_ORDER
from services.registry import SAGA_STORE
from streams.sagas import clock, orchestrator

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]

PAYLOAD = {"order_id": 1, "customer_id": 2, "total": "5.00", "credit_limit": "10.00", "country": "ES",
           "items": [{"sku": "A", "quantity": 1}]}
PAYMENTS = PLACE_ORDER.steps[1].participant


async def _run(dsn: str, work) -> object:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        return await work(conn)


def _saga(dsn: str, saga_id: str) -> tuple:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT state, attempt, extract(epoch FROM deadline) FROM saga_instances WHERE id = %s",
                           (saga_id,)).fetchone()
        events = conn.execute("SELECT kind, detail FROM saga_events WHERE saga_id = %s AND kind IN "
                              "('timed_out', 'delayed') ORDER BY id", (saga_id,)).fetchall()
    assert row is not None
    return row[0], row[1], float(row[2]), events


def _started(dsn: str, key: str, at: float, defn=PLACE_ORDER) -> str:
    sid = asyncio.run(_run(dsn, lambda c: orchestrator.start(c, defn, key, PAYLOAD, at)))
    assert isinstance(sid, str)
    return sid


def test_a_delayed_pipeline_moves_the_deadline_and_a_healthy_one_times_the_step_out(fresh_db):
    dsn = fresh_db(SAGA_STORE)
    now = time.time()
    delayed = _started(dsn, "delayed", now - 60)
    due = asyncio.run(_run(dsn, lambda c: orchestrator.due_participants(c, PLACE_ORDER, now)))
    assert due == {PAYMENTS}
    why = "capture not running: cdc-payments PAUSED/PAUSED"
    asyncio.run(_run(dsn, lambda c: orchestrator.scan_timeouts(c, PLACE_ORDER, now, delays={PAYMENTS: why})))
    state, attempt, deadline, events = _saga(dsn, delayed)
    assert (state, attempt) == ("RUNNING", 1), "no attempt spent on the pipeline's outage"
    assert deadline == pytest.approx(now + PLACE_ORDER.steps[1].timeout_s, abs=1)
    assert [k for k, _ in events] == ["delayed"] and events[0][1].startswith("infrastructure delay") and "PAUSED" in \
        events[0][1], events
    # the same kind of saga, the pipeline healthy: the participant's clock ran out
    healthy = _started(dsn, "healthy", now - 60)
    asyncio.run(_run(dsn, lambda c: orchestrator.scan_timeouts(c, PLACE_ORDER, now, delays={PAYMENTS: None})))
    state, attempt, _, events = _saga(dsn, healthy)
    assert (state, attempt) == ("RUNNING", 2), "resent"
    assert [k for k, _ in events] == ["timed_out"] and events[0][1].startswith("participant timeout"), events


def test_a_business_deadline_is_not_moved_by_an_outage(fresh_db):
    dsn = fresh_db(SAGA_STORE)
    now = time.time()
    short = PLACE_ORDER.model_copy(update={"deadline_s": 30.0})
    sid = _started(dsn, "late", now - 60, short)  # created now (the row's clock), so move `now` past it
    later = now + 31
    asyncio.run(_run(dsn, lambda c: orchestrator.scan_timeouts(c, short, later, delays={PAYMENTS: "broker away"})))
    state, attempt, _, events = _saga(dsn, sid)
    assert attempt == 2 and [k for k, _ in events] == ["timed_out"], (state, attempt, events)


def test_a_saga_that_came_due_after_the_pipeline_was_asked_waits_for_the_next_scan(fresh_db):
    dsn = fresh_db(SAGA_STORE)
    now = time.time()
    sid = _started(dsn, "unasked", now - 60)
    n = asyncio.run(_run(dsn, lambda c: orchestrator.scan_timeouts(c, PLACE_ORDER, now, delays={})))
    assert n == 0 and _saga(dsn, sid)[3] == []


def test_an_orchestrator_that_was_away_moves_every_pending_deadline_by_the_gap(fresh_db):
    dsn = fresh_db(SAGA_STORE)
    now = time.time()
    sid = _started(dsn, "away", now)
    _, _, before, _ = _saga(dsn, sid)

    async def tick(conn, at: float) -> float:
        async with conn.transaction():
            return await clock.tick(conn, "orchestrator", at)

    assert asyncio.run(_run(dsn, lambda c: tick(c, now))) == 0.0, "first tick: nothing known"
    assert asyncio.run(_run(dsn, lambda c: tick(c, now + 1))) == 0.0, "a normal tick"
    gap = asyncio.run(_run(dsn, lambda c: tick(c, now + 121)))
    assert gap == pytest.approx(120.0)
    assert asyncio.run(_run(dsn, lambda c: orchestrator.shift_deadlines(c, PLACE_ORDER, gap, now + 1))) == 1
    _, attempt, after, events = _saga(dsn, sid)
    assert after == pytest.approx(before + 120.0, abs=0.01) and attempt == 1
    assert [k for k, _ in events] == ["delayed"] and "orchestrator was away" in events[0][1], events


def test_a_saga_started_after_the_orchestrator_came_back_keeps_its_deadline(fresh_db):
    """Only deadlines left unread while the orchestrator was away move: one set since (before the
    first scan of the orchestrator now back) was never unread, and a restart must not push it out."""
    dsn = fresh_db(SAGA_STORE)
    now = time.time()
    sid = _started(dsn, "fresh", now)
    _, _, before, _ = _saga(dsn, sid)
    # the last tick, 200 s ago; the saga was set going since
    assert asyncio.run(_run(dsn, lambda c: orchestrator.shift_deadlines(c, PLACE_ORDER, 200.0, now - 200))) == 0
    _, _, after, events = _saga(dsn, sid)
    assert after == pytest.approx(before, abs=0.01) and events == [], (before, after, events)


def test_an_expired_action_that_reached_its_topic_while_the_participant_ran_acts_one_from_before_is_dropped(fresh_db):
    # rule: late because of the pipeline (captured or queued while the participant was up: its asker
    # saw it alive and moved the deadline) it acts; late because the participant was down, it is dropped
    from services.ecommerce.payments.handlers import HANDLERS
    from streams.sagas import participant
    from tests.db.changes import command

    dsn = fresh_db("payments")
    charge = {"order_id": 1, "customer_id": 2, "total": "5.00", "credit_limit": "10.00"}

    async def late(saga_id: str, arrived_while_up: bool):
        cmd = command(saga_id, "payments", "ChargePayment", charge, deadline=time.time() - 30)
        return await _run(dsn, lambda c: participant.handle(c, HANDLERS, cmd, arrived_while_up=arrived_while_up))

    acted = asyncio.run(late("a1b2c3d4-0000-4000-8000-000000000001", True))
    assert acted is not None and acted.outcome == "succeeded"
    assert asyncio.run(late("a1b2c3d4-0000-4000-8000-000000000002", False)) is None
