"""A saga participant's transaction against the payments database: inbox row, compensation
marker, deadline, effect and outbox reply, with the real ChargePayment/RefundPayment handlers."""
from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import pytest

from schemas.saga import SagaCommand, SagaReply
from services.ecommerce.payments.handlers import HANDLERS
from streams.sagas import participant
from streams.sagas.participant import COMPENSATED_FIRST
from tests.db.changes import command
from tests.db.locks import wait_until_blocked

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]

CHARGE = {"order_id": 1, "customer_id": 2, "total": "5.00", "credit_limit": "10.00"}


def charge(saga_id: str, **kw) -> SagaCommand:
    return command(saga_id, "payments", "ChargePayment", CHARGE, **kw)


def refund(saga_id: str) -> SagaCommand:
    return command(saga_id, "payments", "RefundPayment", CHARGE, action="compensation")


def handle(dsn: str, *commands: SagaCommand) -> list[SagaReply | None]:
    async def run() -> list[SagaReply | None]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            return [await participant.handle(conn, HANDLERS, cmd) for cmd in commands]
    return asyncio.run(run())


def recorded(dsn: str, saga_id: str) -> dict[str, list[tuple]]:
    """What the saga left in the payments database: effect, inbox, outbox replies."""
    with psycopg.connect(dsn) as conn:
        return {
            "payments": conn.execute("SELECT status FROM payments WHERE saga_id = %s", (saga_id,)).fetchall(),
            "inbox": conn.execute("SELECT action, outcome, reason FROM saga_inbox WHERE saga_id = %s ORDER BY action",
                                  (saga_id,)).fetchall(),
            "replies": conn.execute("SELECT payload->>'action', payload->>'outcome' FROM outbox WHERE aggregateid = %s "
                                    "ORDER BY created_at",
                                    (saga_id,)).fetchall(),
        }


def test_a_command_acts_once_per_saga_step_and_action(fresh_db):
    # rule: the idempotency key is (saga, step, action), not the message: a resend replies again
    # with the recorded outcome and does not act a second time
    dsn = fresh_db("payments")
    saga = str(uuid.uuid4())
    first, resent = handle(dsn, charge(saga), charge(saga, attempt=2))
    assert first == resent and first is not None and first.outcome == "succeeded"
    assert recorded(dsn, saga) == {"payments": [("CHARGED",)], "inbox": [("action", "succeeded", None)],
                                   "replies": [("action", "succeeded")] * 2}


def test_a_transaction_killed_midway_leaves_nothing_and_its_redelivery_acts_once(fresh_db):
    # rule: inbox row, effect and outbox reply commit together or not at all
    dsn = fresh_db("payments")
    saga = str(uuid.uuid4())

    async def killed_after_the_reply(conn: psycopg.AsyncConnection, cmd: SagaCommand, reply: SagaReply) -> None:
        await participant.reply_to_orchestrator(conn, cmd, reply)  # effect, inbox and reply written...
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:  # ...then the backend dies
            await admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))

    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await participant.handle(conn, HANDLERS, charge(saga), publish=killed_after_the_reply)

    with pytest.raises(psycopg.OperationalError):
        asyncio.run(run())
    assert recorded(dsn, saga) == {"payments": [], "inbox": [], "replies": []}
    handle(dsn, charge(saga, attempt=2))
    assert recorded(dsn, saga) == {"payments": [("CHARGED",)], "inbox": [("action", "succeeded", None)],
                                   "replies": [("action", "succeeded")]}


def test_a_compensation_before_its_action_leaves_a_marker_and_the_late_action_does_nothing(fresh_db):
    # rule: a compensation that arrives first records the action as failed (the marker); the late
    # action then replies failed and charges nothing
    dsn = fresh_db("payments")
    saga = str(uuid.uuid4())
    compensated, late = handle(dsn, refund(saga), charge(saga))
    assert compensated is not None and compensated.outcome == "succeeded"
    assert late is not None and (late.outcome, late.reason) == ("failed", COMPENSATED_FIRST)
    assert recorded(dsn, saga) == {
        "payments": [],
        "inbox": [("action", "failed", COMPENSATED_FIRST), ("compensation", "succeeded", None)],
        "replies": [("compensation", "succeeded"), ("action", "failed")]}


def test_an_expired_action_is_dropped_unrecorded_and_its_resend_with_a_new_deadline_acts(fresh_db):
    # rule: an action past its deadline that never ran leaves no effect, inbox row or reply, so a
    # resend with a new deadline is not refused
    dsn = fresh_db("payments")
    saga = str(uuid.uuid4())
    (expired,) = handle(dsn, charge(saga, deadline=time.time() - 1))
    assert expired is None
    assert recorded(dsn, saga) == {"payments": [], "inbox": [], "replies": []}
    (renewed,) = handle(dsn, charge(saga, attempt=2, deadline=time.time() + 60))
    assert renewed is not None and renewed.outcome == "succeeded"
    assert recorded(dsn, saga)["payments"] == [("CHARGED",)]


def test_a_compensation_arriving_while_its_action_runs_waits_for_it_and_then_undoes_it(fresh_db):
    # rule: a step's command and its compensation never interleave (the step's lock): a
    # compensation read while the action is still in its transaction must not decide "never
    # acted" (leave the marker) and let the action commit after it: the charge would stand
    dsn = fresh_db("payments")
    saga = str(uuid.uuid4())
    inside = asyncio.Event()
    release = asyncio.Event()

    async def slow_charge(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> str | None:
        reason = await HANDLERS["ChargePayment"](conn, cmd)
        inside.set()
        await release.wait()  # the action's transaction stays open here
        return reason

    handlers = {**HANDLERS, "ChargePayment": slow_charge}

    async def run() -> tuple[SagaReply | None, SagaReply | None]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as a, \
                await psycopg.AsyncConnection.connect(dsn, autocommit=True) as b, \
                await psycopg.AsyncConnection.connect(dsn, autocommit=True) as watcher:
            action = asyncio.create_task(participant.handle(a, handlers, charge(saga)))
            await asyncio.wait_for(inside.wait(), 10)
            compensation = asyncio.create_task(participant.handle(b, handlers, refund(saga)))
            await wait_until_blocked(watcher, b.info.backend_pid, compensation, "the compensation")
            release.set()
            return await action, await compensation

    acted, undone = asyncio.run(run())
    assert acted is not None and acted.outcome == "succeeded"
    assert undone is not None and undone.outcome == "succeeded"
    assert recorded(dsn, saga) == {"payments": [("REFUNDED",)],
                                   "inbox": [("action", "succeeded", None), ("compensation", "succeeded", None)],
                                   "replies": [("action", "succeeded"), ("compensation", "succeeded")]}
