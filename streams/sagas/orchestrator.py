"""The orchestrator's persistence of the saga state machine: each event (a saga's start event, a
reply, a timeout) is one transaction that locks the saga row, runs the pure transition, stores the new
state, writes the commands to the orchestrator's outbox and appends to the saga's timeline."""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from schemas.saga import SagaReply
from services import outbox
from streams.sagas import deadlines, machine
from streams.sagas.definition import SagaDefinition
from streams.sagas.enabled import Sagas
from streams.sagas.machine import SagaState, SagaStatus, Transition
from streams.sagas.topics import commands_aggregate

SAGA_NAMESPACE = uuid.UUID("6f1c1b1e-3c1a-4d1e-9a55-1d2f3e4a5b6c")
COLUMNS = "id, state, step, phase, attempt, extract(epoch FROM deadline), completed, payload, reason, retry_pending"


def saga_id_for(saga: str, business_key: str) -> str:
    """Deterministic: the same business key starts the same saga, however often its event is delivered."""
    return str(uuid.uuid5(SAGA_NAMESPACE, f"{saga}:{business_key}"))


def _state(row: tuple) -> SagaState:
    sid, status, step, phase, attempt, deadline, completed, payload, reason, retry_pending = row
    return SagaState(str(sid), SagaStatus(status), step, phase, attempt, float(deadline or 0), tuple(completed),
                     payload, reason, retry_pending)


async def _save(conn: psycopg.AsyncConnection, defn: SagaDefinition, before: SagaState | None, t: Transition,
                kind: str, detail: str | None = None) -> None:
    s = t.state
    deadline = datetime.fromtimestamp(s.deadline, tz=UTC) if s.deadline else None
    if kind != "sent":
        step_name = defn.steps[before.step].name if before else None
        await conn.execute("INSERT INTO saga_events (saga_id, kind, step, step_name, action, detail) "
                           "VALUES (%s, %s, %s, %s, %s, %s)",
                           (s.saga_id, kind, before.step if before else None, step_name,
                            before.phase if before else None, detail))
    for cmd in t.commands:
        await outbox.write_async(conn, commands_aggregate(cmd.participant), cmd.saga_id, cmd.name, cmd.model_dump())
        await conn.execute("INSERT INTO saga_events (saga_id, kind, step, step_name, action, detail) "
                           "VALUES (%s, 'sent', %s, %s, %s, %s)",
                           (s.saga_id, cmd.step, cmd.step_name, cmd.action, f"{cmd.name} attempt {cmd.attempt}"))
    # after the commands: sent_lsn is past them in the WAL, captured once the connector's slot confirms it
    await conn.execute("UPDATE saga_instances SET state = %s, step = %s, phase = %s, attempt = %s, deadline = %s, "
                       "completed = %s, reason = %s, retry_pending = %s, updated_at = clock_timestamp(), "
                       "sent_lsn = CASE WHEN %s THEN pg_current_wal_insert_lsn() ELSE sent_lsn END WHERE id = %s",
                       (s.status.value, s.step, s.phase, s.attempt, deadline, list(s.completed), s.reason,
                        s.retry_pending, bool(t.commands), s.saga_id))
    if s.status.terminal and (before is None or not before.status.terminal):
        await conn.execute("INSERT INTO saga_events (saga_id, kind, detail) VALUES (%s, 'ended', %s)",
                           (s.saga_id, f"{s.status.value}{': ' + s.reason if s.reason else ''}"))


async def start(conn: psycopg.AsyncConnection, defn: SagaDefinition, business_key: str,
                payload: dict[str, Any], now: float) -> str | None:
    """Start the saga once per business key; returns its id, or None if it already existed."""
    saga_id = saga_id_for(defn.name, business_key)
    async with conn.transaction():
        cur = await conn.execute("INSERT INTO saga_instances (id, saga_type, business_key, state, payload) "
                                 "VALUES (%s, %s, %s, 'RUNNING', %s) ON CONFLICT (id) DO NOTHING RETURNING id",
                                 (saga_id, defn.name, business_key, Jsonb(payload)))
        if await cur.fetchone() is None:
            return None
        await conn.execute("INSERT INTO saga_events (saga_id, kind, detail) VALUES (%s, 'started', %s)",
                           (saga_id, business_key))
        await _save(conn, defn, None, machine.start(defn, saga_id, payload, now), "sent")
    return saga_id


async def _locked(conn: psycopg.AsyncConnection, saga_id: str) -> tuple[str, SagaState] | None:
    cur = await conn.execute(f"SELECT saga_type, {COLUMNS} FROM saga_instances WHERE id = %s FOR UPDATE", (saga_id,))
    row = await cur.fetchone()
    return (row[0], _state(row[1:])) if row else None


async def on_reply(conn: psycopg.AsyncConnection, sagas: Sagas, reply: SagaReply, now: float) -> bool:
    """Returns False when the reply changed nothing (unknown saga, duplicate, late)."""
    async with conn.transaction():
        found = await _locked(conn, reply.saga_id)
        if found is None:
            return False
        saga_type, state = found
        defn = sagas.definition(saga_type)
        t = machine.on_reply(defn, state, reply, now)
        if t.state == state:
            return False
        detail = f"{reply.outcome}{': ' + reply.reason if reply.reason else ''}"
        await _save(conn, defn, state, t, "replied", detail)
    return True


async def due_participants(conn: psycopg.AsyncConnection, defn: SagaDefinition, now: float) -> set[str]:
    """Participants some due saga waits for (the timeout scan asks the pipeline about them first,
    outside its transaction: the checks may take seconds while the broker is away)."""
    cur = await conn.execute("SELECT DISTINCT step FROM saga_instances WHERE state IN ('RUNNING', 'COMPENSATING') "
                             "AND saga_type = %s AND deadline < to_timestamp(%s) AND NOT retry_pending",
                             (defn.name, now))
    return {defn.steps[step].participant for (step,) in await cur.fetchall()}


async def shift_deadlines(conn: psycopg.AsyncConnection, defn: SagaDefinition, gap: float,
                          away_since: float | None = None) -> int:
    """The orchestrator was away for `gap` seconds (from `away_since`, its last tick): every
    deadline pending since before then moves by as much, and each saga's timeline says why. A
    saga set going after that (by the orchestrator now back, before its first scan) was never
    left unread: it keeps its deadline, else every restart would push it out again."""
    async with conn.transaction():
        cur = await conn.execute("UPDATE saga_instances SET deadline = deadline + make_interval(secs => %s) "
                                 "WHERE state IN ('RUNNING', 'COMPENSATING') AND saga_type = %s "
                                 "AND (%s::float8 IS NULL OR updated_at < to_timestamp(%s::float8)) "
                                 "RETURNING id, step, phase", (gap, defn.name, away_since, away_since))
        moved = await cur.fetchall()
        detail = deadlines.delay_detail(f"the orchestrator was away {gap:.1f}s")
        for sid, step, phase in moved:
            await conn.execute("INSERT INTO saga_events (saga_id, kind, step, step_name, action, detail) "
                               "VALUES (%s, 'delayed', %s, %s, %s, %s)",
                               (sid, step, defn.steps[step].name, phase, detail))
    return len(moved)


NOT_CAPTURED = "its command is not captured yet (the saga store's slot has not confirmed it)"
# sent_lsn past what the connector's slot confirmed (or no slot at all): the message is still in the outbox
UNCAPTURED = ("coalesce(sent_lsn > (SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = %s), "
              "sent_lsn IS NOT NULL)")


async def scan_timeouts(conn: psycopg.AsyncConnection, defn: SagaDefinition, now: float, limit: int = 100,
                        delays: Mapping[str, str | None] | None = None, slot: str | None = None) -> int:
    """Sagas whose command timed out, taken by whichever worker locks them first. `delays`: per
    participant, why the pipeline may hold its answer (None: healthy); a saga waiting on a delayed
    participant, or whose command its connector (`slot`) has not captured yet, gets its deadline
    moved instead. Without `delays`, every due saga times out."""
    handled = 0
    async with conn.transaction():
        cur = await conn.execute(
            f"SELECT {COLUMNS}, extract(epoch FROM created_at), {UNCAPTURED} FROM saga_instances "
            "WHERE state IN ('RUNNING', 'COMPENSATING') AND saga_type = %s "
            "AND deadline < to_timestamp(%s) ORDER BY deadline LIMIT %s FOR UPDATE SKIP LOCKED",
            (slot, defn.name, now, limit))
        for row in await cur.fetchall():
            state, started, uncaptured = _state(row[:-2]), float(row[-2]), slot is not None and row[-1]
            participant = defn.steps[state.step].participant
            if delays is not None and not state.retry_pending:
                if participant not in delays:
                    continue  # came due after the pipeline was asked: the next scan takes it
                why = delays[participant] or (NOT_CAPTURED if uncaptured else None)
                if why is not None and await _postpone(conn, defn, state, started, now, why):
                    handled += 1
                    continue
            t = machine.on_timeout(defn, state, now)
            if t.state != state:
                detail = deadlines.timeout_detail(f"no reply to attempt {state.attempt}")
                await _save(conn, defn, state, t, "timed_out", detail)
                handled += 1
    return handled


async def _postpone(conn: psycopg.AsyncConnection, defn: SagaDefinition, state: SagaState, started: float,
                    now: float, why: str) -> bool:
    """Move the deadline (an infrastructure delay); False when the business deadline forbids it."""
    business = started + defn.deadline_s if defn.deadline_s is not None else None
    moved = deadlines.postponed(now, machine.step_timeout(defn, state.step, state.attempt), business)
    if moved is None:
        return False
    await conn.execute("UPDATE saga_instances SET deadline = to_timestamp(%s), updated_at = clock_timestamp() "
                       "WHERE id = %s", (moved, state.saga_id))
    await conn.execute("INSERT INTO saga_events (saga_id, kind, step, step_name, action, detail) "
                       "VALUES (%s, 'delayed', %s, %s, %s, %s)",
                       (state.saga_id, state.step, defn.steps[state.step].name, state.phase,
                        deadlines.delay_detail(why)))
    return True


async def take_over(conn: psycopg.AsyncConnection, sagas: Sagas, saga: str, action: str, by: str, why: str,
                    now: float) -> tuple[SagaState, SagaState]:
    """A person's decision on a FAILED orchestrated saga (by id or business key): `retry` sends its
    failed compensation again, `resolve` closes it. One transaction, under the saga's row lock, so
    it never races the orchestrator; the timeline records who and why. Returns (before, after)."""
    async with conn.transaction():
        cur = await conn.execute("SELECT id::text FROM saga_instances WHERE (id::text = %s OR business_key = %s) "
                                 "AND saga_type NOT LIKE '%%/%%' ORDER BY created_at DESC", (saga, saga))
        ids = [r[0] for r in await cur.fetchall()]
        if len(ids) != 1:
            raise machine.NotRetryable(f"no orchestrated saga {saga}" if not ids else
                                       f"{len(ids)} orchestrated sagas have the key {saga}: name one by id {ids}")
        found = await _locked(conn, ids[0])
        assert found is not None
        saga_type, state = found
        defn = sagas.definition(saga_type)
        t = machine.retry(defn, state, now) if action == "retry" else machine.resolve(state, why)
        await _save(conn, defn, state, t, "retried" if action == "retry" else "resolved", f"by {by}: {why}")
    return state, t.state
