"""The choreography's monitor against a real saga store: what it records of a saga does not
depend on the order it reads the participants' topics in (a monitor that was down catches up
across several topics, in no causal order)."""
from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import pytest

from schemas.saga import SagaEvent
from services.ecommerce.place_order import PLACE_ORDER
from services.registry import SAGA_STORE
from streams.sagas import monitor

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]
FAILED_AT = PLACE_ORDER.index("schedule_shipment")


def _compensated_saga(saga_id: str) -> list[SagaEvent]:
    """Every step acts, shipping fails, the steps before are undone newest first."""
    at = time.time()
    events = [SagaEvent(kind="outcome", saga=PLACE_ORDER.name, saga_id=saga_id, business_key="7" if step == 0 else None,
                        step=step, action="action", outcome="succeeded", at=at + step) for step in range(FAILED_AT)]
    events.append(SagaEvent(kind="outcome", saga=PLACE_ORDER.name, saga_id=saga_id, step=FAILED_AT, action="action",
                            outcome="failed", reason="the carrier does not serve AQ", at=at + FAILED_AT))
    events += [SagaEvent(kind="outcome", saga=PLACE_ORDER.name, saga_id=saga_id, step=step, action="compensation",
                         outcome="succeeded", at=at + 10 + FAILED_AT - step) for step in reversed(range(FAILED_AT))]
    return events


def _record(dsn: str, events: list[SagaEvent]) -> tuple[tuple, list[str]]:
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            for i, e in enumerate(events):
                await monitor.record(conn, PLACE_ORDER, e, f"event-{i}")

    asyncio.run(run())
    with psycopg.connect(dsn) as conn:
        saga = conn.execute("SELECT state, reason FROM saga_instances").fetchone()
        ended = [r[0] for r in conn.execute("SELECT detail FROM saga_events WHERE kind = 'ended'").fetchall()]
    assert saga is not None
    return saga, ended


def test_the_last_event_read_before_the_failure_still_records_the_failures_reason(fresh_db):
    # rule: a monitor catching up records the same end state and reason as one that read live
    in_order = _compensated_saga(str(uuid.uuid4()))
    live = _record(fresh_db(SAGA_STORE), in_order)
    last_first = _record(fresh_db(SAGA_STORE), [in_order[-1], *in_order[:-1]])  # the initiator's topic read first
    expected = ("COMPENSATED", "schedule_shipment: the carrier does not serve AQ")
    assert live == (expected, [f"{expected[0]}: {expected[1]}"])
    assert last_first == live, "catching up in another order recorded another outcome"
