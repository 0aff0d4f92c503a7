"""The choreographed saga's monitor: a passive projection of every participant's saga events
into the orchestrator's database (saga instances by state, one timeline per saga), so
`observe sagas`, the `cdc_sagas` metric and the tests read both modes the same way. Nothing
waits for it: the sagas progress without it, and it catches up from the topics."""
from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from schemas.saga import SagaEvent
from streams.sagas import choreography
from streams.sagas.definition import SagaDefinition


def saga_type(defn: SagaDefinition) -> str:
    """Distinct from the orchestrated type, so an orchestrator never scans these for timeouts."""
    return f"{defn.name}/choreographed"


async def record(conn: psycopg.AsyncConnection, defn: SagaDefinition, e: SagaEvent, event_id: str) -> bool:
    """Returns False for an event seen before (a redelivery or a replay)."""
    async with conn.transaction():
        cur = await conn.execute("INSERT INTO saga_monitor_seen (event_id) VALUES (%s) ON CONFLICT DO NOTHING "
                                 "RETURNING 1", (event_id,))
        if await cur.fetchone() is None:
            return False
        await conn.execute("INSERT INTO saga_instances (id, saga_type, business_key, state, payload) "
                           "VALUES (%s, %s, %s, 'RUNNING', %s) ON CONFLICT (id) DO UPDATE "
                           "SET business_key = coalesce(saga_instances.business_key, EXCLUDED.business_key)",
                           (e.saga_id, saga_type(defn), e.business_key, Jsonb(e.payload)))
        cur = await conn.execute("SELECT state FROM saga_instances WHERE id = %s FOR UPDATE", (e.saga_id,))
        row = await cur.fetchone()
        assert row is not None
        before = row[0]
        status, reason = choreography.status_after(defn, before, e)
        ask = choreography.ask_of(defn, e)
        step, phase, attempt = (ask.step, ask.phase, ask.attempt) if ask else (e.step, e.action, e.attempt)
        if before in choreography.TERMINAL and status == before:
            await _late_reason(conn, defn, e, before)
        else:
            # the first reason tells why compensating began; a quarantine says why it stopped
            await conn.execute("UPDATE saga_instances SET state = %s, step = %s, phase = %s, attempt = %s, "
                               "reason = CASE WHEN %s = 'FAILED' THEN %s ELSE coalesce(reason, %s) END, "
                               "updated_at = clock_timestamp() WHERE id = %s",
                               (status, step, phase, attempt, status, reason, reason, e.saga_id))
        for kind, s, name, action, detail in choreography.timeline_entries(defn, e):
            await conn.execute("INSERT INTO saga_events (saga_id, at, kind, step, step_name, action, detail) "
                               "VALUES (%s, to_timestamp(%s), %s, %s, %s, %s, %s)",
                               (e.saga_id, e.at, kind, s, name, action, detail))
        if status in choreography.TERMINAL and before not in choreography.TERMINAL:
            # the saga's reason (why compensating began), as the orchestrator's timeline ends
            await conn.execute("INSERT INTO saga_events (saga_id, at, kind, detail) SELECT %s, to_timestamp(%s), "
                               "'ended', %s || coalesce(': ' || reason, '') FROM saga_instances WHERE id = %s",
                               (e.saga_id, e.at, status, e.saga_id))
    return True


async def _late_reason(conn: psycopg.AsyncConnection, defn: SagaDefinition, e: SagaEvent, state: str) -> None:
    """A monitor catching up reads several topics in no causal order: a saga's last event (the
    initiator's compensation) can come before the failure that began the compensations. The
    state stays terminal; the reason that failure gives is kept if none was recorded yet."""
    _, reason = choreography.status_after(defn, "RUNNING", e)
    if reason is None:
        return
    cur = await conn.execute("UPDATE saga_instances SET reason = %s WHERE id = %s AND reason IS NULL RETURNING 1",
                             (reason, e.saga_id))
    if await cur.fetchone() is not None:
        await conn.execute("UPDATE saga_events SET detail = %s WHERE saga_id = %s AND kind = 'ended' AND detail = %s",
                           (f"{state}: {reason}", e.saga_id, state))
