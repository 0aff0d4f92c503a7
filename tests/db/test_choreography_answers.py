"""A choreographed participant's watches answered in its own database, against the other
transactions that make watches: a late success read while a scan gives the step up must answer
the give-up's watch too, and a success read while the initiator reads back its own start event
(which makes the watch on step 1) must answer that watch.

Seen in CI (the 200-order invariant test, choreographed): orders gave up on charge_payment while
payments' success waited in its backlog. The success's transaction waited for the scan's row
lock, but the give-up's own watch (a row the scan inserted) was not in its snapshot; payments,
asked to undo a step it had done, rightly did nothing, and that watch resent the ask until it
would have quarantined a saga that had ended well. And (the same test, the next run): a replay
answered a watch that had kept waiting on a saga COMPLETED long before: payments' success had
reached orders while orders read back its start event, each transaction blind to the other's row."""
from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import pytest

from schemas.saga import SagaEvent
from services.ecommerce.place_order import PLACE_ORDER
from streams.sagas import choreography_runtime as runtime
from streams.sagas.choreography import ABANDONED, ANSWERED, Watch
from streams.sagas.enabled import enabled
from tests.db.locks import wait_until_blocked

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]

ASKER = PLACE_ORDER.steps[0].participant   # orders asks...
STEP = 1                                   # ...payments to charge
GIVEN_UP = PLACE_ORDER.steps[STEP].retries + 1   # an attempt past the step's retries: the scan gives up


def _watches(dsn: str, saga_id: str) -> dict[tuple[str, bool], str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT phase, cancel_only, state FROM saga_watches WHERE saga_id = %s AND step = %s",
                            (saga_id, STEP)).fetchall()
    return {(phase, cancel_only): state for phase, cancel_only, state in rows}


def _interleaved(dsn: str, holds_lock, waits) -> None:
    """`holds_lock(conn)` runs in a transaction left open until `waits(conn)` waits on its locks;
    then it commits and `waits` finishes."""
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as first, \
                await psycopg.AsyncConnection.connect(dsn, autocommit=True) as second, \
                await psycopg.AsyncConnection.connect(dsn, autocommit=True) as watcher:
            async with first.transaction():
                await holds_lock(first)
                waiting = asyncio.create_task(waits(second))
                await wait_until_blocked(watcher, second.info.backend_pid, waiting, "the answer")
            await asyncio.wait_for(waiting, 10)

    asyncio.run(run())


def test_a_success_read_while_the_scan_gives_the_step_up_answers_the_give_up(fresh_db):
    dsn = fresh_db(ASKER)
    saga_id = str(uuid.uuid4())
    now = time.time()
    me = runtime.Participant(enabled(), ASKER)
    success = SagaEvent(kind="outcome", saga=PLACE_ORDER.name, saga_id=saga_id, step=STEP, action="action",
                        outcome="succeeded", attempt=1, deadline=now + 60, at=now, payload={"order_id": 1})

    async def watching() -> None:   # committed before: the answer's statement sees the row and waits on its lock
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await runtime._save_watch(conn, PLACE_ORDER, Watch(saga_id, STEP, "action", GIVEN_UP, now - 5,
                                                               {"order_id": 1}))

    async def scan(conn) -> None:
        assert await me.scan_watches(conn, now) == 1

    asyncio.run(watching())

    _interleaved(dsn, scan, lambda conn: me.on_event(conn, success, now))
    seen = _watches(dsn, saga_id)
    assert seen == {("action", False): ABANDONED, ("compensation", True): ANSWERED}, (
        f"expected the give-up's watch answered by the late success; saw {seen}")


def test_a_success_read_while_the_start_event_is_read_back_answers_the_watch_it_makes(fresh_db):
    dsn = fresh_db(ASKER)
    saga_id = str(uuid.uuid4())
    now = time.time()
    me = runtime.Participant(enabled(), ASKER)
    started = SagaEvent(kind="outcome", saga=PLACE_ORDER.name, saga_id=saga_id, step=0, action="action",
                        outcome="succeeded", attempt=1, deadline=now + 60, at=now, payload={"order_id": 1})
    success = SagaEvent(kind="outcome", saga=PLACE_ORDER.name, saga_id=saga_id, step=STEP, action="action",
                        outcome="succeeded", attempt=1, deadline=now + 60, at=now, payload={"order_id": 1})

    _interleaved(dsn, lambda conn: me.on_event(conn, started, now), lambda conn: me.on_event(conn, success, now))
    seen = _watches(dsn, saga_id)
    assert seen == {("action", False): ANSWERED}, f"expected the start's watch answered by the success; saw {seen}"
