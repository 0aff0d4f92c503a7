"""A participant handling one saga command in one local transaction: its inbox row, its
effect and its reply (through the outbox) commit together or not at all.

- Idempotency key (saga, step, action), not the message id: a resent command replies again
  with the recorded outcome and acts no second time.
- A compensation that arrives before (or instead of) its action leaves a marker: the late
  action then becomes a no-op that replies failed.
- An action past its deadline that never ran is dropped: no effect, no inbox row, no reply. The
  asker's timeout decides (resend with a new deadline, or give up and compensate); recording a
  refusal would refuse every resend too, so a participant that is only behind would fail sagas.
  Unless it reached the topic while this participant was running: then it is late because of the
  pipeline (capture, the backlog), and the asker, which saw the participant alive, moved its
  deadline and still waits (streams/sagas/deadlines.py); it acts. Should the asker have given up
  meanwhile, the compensation behind it on the same partition undoes it.
- A refused action is final; a failed compensation is not: its resend runs it again."""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import psycopg

from schemas.saga import SagaCommand, SagaReply
from services import outbox
from streams.sagas.handlers import Handler
from streams.sagas.topics import replies_aggregate

COMPENSATED_FIRST = "compensated before it arrived"
# Writes the reply to the participant's outbox, in the handling transaction.
Publish = Callable[[psycopg.AsyncConnection, SagaCommand, SagaReply], Awaitable[None]]


async def reply_to_orchestrator(conn: psycopg.AsyncConnection, cmd: SagaCommand, reply: SagaReply) -> None:
    await outbox.write_async(conn, replies_aggregate(cmd.saga), cmd.saga_id, "SagaReply", reply.model_dump())


async def acted(conn: psycopg.AsyncConnection, saga_id: str, step: int) -> bool:
    """Whether the step's action ran and succeeded (under the step's lock: see `lock_step`)."""
    cur = await conn.execute("SELECT 1 FROM saga_inbox WHERE saga_id = %s AND step = %s AND action = 'action' "
                             "AND outcome = 'succeeded'", (saga_id, step))
    return await cur.fetchone() is not None


async def lock_step(conn: psycopg.AsyncConnection, saga_id: str, step: int) -> None:
    """A saga step's command and its compensation never interleave (held to the transaction's end)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (saga_id, step))


async def _recorded(conn: psycopg.AsyncConnection, cmd: SagaCommand, action: str) -> tuple[str, str | None] | None:
    cur = await conn.execute("SELECT outcome, reason FROM saga_inbox WHERE saga_id = %s AND step = %s AND action = %s "
                             "FOR UPDATE", (cmd.saga_id, cmd.step, action))
    row = await cur.fetchone()
    return (row[0], row[1]) if row else None


async def _record(conn: psycopg.AsyncConnection, cmd: SagaCommand, action: str, reason: str | None) -> None:
    await conn.execute("INSERT INTO saga_inbox (saga_id, step, action, outcome, reason) VALUES (%s, %s, %s, %s, %s) "
                       "ON CONFLICT (saga_id, step, action) DO UPDATE SET outcome = EXCLUDED.outcome, "
                       "reason = EXCLUDED.reason, handled_at = clock_timestamp()",
                       (cmd.saga_id, cmd.step, action, "failed" if reason else "succeeded", reason))


async def handle(conn: psycopg.AsyncConnection, handlers: dict[str, Handler], cmd: SagaCommand,
                 now: float | None = None, publish: Publish = reply_to_orchestrator,
                 answer_repeats: bool = True, arrived_while_up: bool = False) -> SagaReply | None:
    """`answer_repeats=False`: a repeated command publishes nothing (its first answer is in the
    outbox already, durable); the choreography needs it, or every repeat would ripple down the saga.
    `arrived_while_up`: the message reached its topic after this participant started, so a late
    action is the pipeline's delay, not a sign the asker gave up. Returns None for an expired
    action that was dropped."""
    now = time.time() if now is None else now
    async with conn.transaction():
        await lock_step(conn, cmd.saga_id, cmd.step)
        done = await _recorded(conn, cmd, cmd.action)
        if done is None and cmd.action == "action" and now > cmd.deadline and not arrived_while_up:
            return None
        repeat = done is not None and not (cmd.action == "compensation" and done[0] == "failed")
        if done is not None and repeat:
            reason = done[1] if done[0] == "failed" else None
        else:  # first time, or a compensation that failed before and is tried again
            reason = await _decide(conn, handlers, cmd, now)
            await _record(conn, cmd, cmd.action, reason)
        reply = SagaReply(saga_id=cmd.saga_id, step=cmd.step, action=cmd.action,
                          outcome="failed" if reason else "succeeded", reason=reason)
        if answer_repeats or not repeat:
            await publish(conn, cmd, reply)
    return reply


async def _decide(conn: psycopg.AsyncConnection, handlers: dict[str, Handler], cmd: SagaCommand,
                  now: float) -> str | None:
    if cmd.action == "action":
        if await _recorded(conn, cmd, "compensation") is not None:
            return COMPENSATED_FIRST
        return await _run(conn, handlers, cmd)
    if cmd.local_action:
        return await _run(conn, handlers, cmd)
    action = await _recorded(conn, cmd, "action")
    if action is None:
        await _record(conn, cmd, "action", COMPENSATED_FIRST)  # the marker: a late action is a no-op
        return None
    if action[0] == "failed":
        return None  # the action had no effect: nothing to undo
    return await _run(conn, handlers, cmd)


async def _run(conn: psycopg.AsyncConnection, handlers: dict[str, Handler], cmd: SagaCommand) -> str | None:
    handler = handlers.get(cmd.name)
    if handler is None:
        return f"{cmd.participant} has no handler for {cmd.name}"
    try:
        async with conn.transaction():  # savepoint: a refusing handler leaves nothing behind
            reason = await handler(conn, cmd)
            if reason:
                raise _Refused(reason)
    except _Refused as refused:
        return refused.reason
    return None


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
