"""The choreographed saga's persistence, for one participant: each event is one transaction
that answers the participant's watches, and, when the event asks it to act, runs the shared
participant logic (inbox, effect, event in the outbox) and keeps a watch on what its own
event asks next. A timer resends, gives up or quarantines due watches (FOR UPDATE SKIP LOCKED)."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import psycopg
from psycopg.types.json import Jsonb

from schemas.outbox import OutboxMessage
from schemas.saga import SagaCommand, SagaEvent, SagaReply
from services import outbox
from services.registry import current
from streams.sagas import choreography, participant
from streams.sagas.choreography import Watch, participant_of
from streams.sagas.definition import SagaDefinition
from streams.sagas.enabled import Sagas
from streams.sagas.machine import step_timeout
from streams.sagas.orchestrator import saga_id_for
from streams.sagas.plugin import SagaPlugin
from streams.sagas.retention import lsn
from streams.sagas.topics import events_aggregate, events_topic

NOT_CAPTURED = "its ask is not captured yet (the asker's slot has not confirmed it)"
WATCH_COLUMNS = ("saga_id, step, phase, attempt, extract(epoch FROM deadline), payload, state, retry_pending, "
                 "cancel_only, reason")


def _subscriptions(plugin: SagaPlugin, me: str) -> list[str]:
    """The events topics of the participants next to each of my steps (they ask me to act and
    answer what I asked); the initiator also reads its own start events to watch step 1."""
    defn, start = plugin.definition, plugin.start.topic
    topics: list[str] = []
    for i, step in enumerate(defn.steps):
        if step.participant != me:
            continue
        if i == 0:
            topics.append(start)
        for j in (i - 1, i + 1):
            if 0 <= j < len(defn.steps) and participant_of(defn, j) != me:
                topics += ([start] if j == 0 else []) + [events_topic(participant_of(defn, j))]
    return topics


def subscriptions(sagas: Sagas, me: str) -> list[str]:
    return list(dict.fromkeys(t for p in sagas.plugins for t in _subscriptions(p, me)))


def monitor_subscriptions(sagas: Sagas) -> list[str]:
    topics = [*sagas.start_topics]
    for p in sagas.plugins:
        topics += [events_topic(name) for name in p.participants]
    return list(dict.fromkeys(topics))


def to_event(sagas: Sagas, topic: str, msg: OutboxMessage, timestamp: float) -> SagaEvent | None:
    """A saga event from an outbox message; a saga's start event is step 0's success (its
    deadline for step 1 counts from the message's timestamp, the same for every reader). It
    carries on only the fields the saga's steps name."""
    plugin = sagas.starting(topic, msg.event_type)
    if plugin is not None:
        defn = plugin.definition
        key = plugin.business_key(msg.payload)  # a bad event never starts a saga
        return SagaEvent(kind="outcome", saga=defn.name, saga_id=saga_id_for(defn.name, key), business_key=key,
                         step=0, action="action", outcome="succeeded", attempt=1, at=timestamp,
                         deadline=timestamp + step_timeout(defn, 1, 1), payload=defn.travelling(msg.payload))
    if msg.event_type.startswith("Saga"):
        event = SagaEvent.model_validate(msg.payload)
        return event if any(p.name == event.saga for p in sagas.plugins) else None
    return None  # other domain events of the same topic


def _watch(row: tuple) -> Watch:
    saga_id, step, phase, attempt, deadline, payload, state, retry_pending, cancel_only, reason = row
    return Watch(saga_id, step, phase, attempt, float(deadline), payload, state, retry_pending, cancel_only, reason)


async def _save_watch(conn: psycopg.AsyncConnection, defn: SagaDefinition, w: Watch, keep_existing: bool = False,
                      sent_lsn: str | None = None) -> bool:
    """`sent_lsn`: where in the WAL the ask it waits on was written (None: not known, or read back
    from its topic): until the connector's slot confirms it, the ask is not captured. Returns
    whether a row was written (False: `keep_existing` and the watch was there)."""
    conflict = ("DO NOTHING" if keep_existing else
                "DO UPDATE SET attempt = EXCLUDED.attempt, deadline = EXCLUDED.deadline, state = EXCLUDED.state, "
                "retry_pending = EXCLUDED.retry_pending, reason = EXCLUDED.reason, updated_at = clock_timestamp(), "
                "sent_lsn = EXCLUDED.sent_lsn")
    cur = await conn.execute(
        "INSERT INTO saga_watches (saga_id, step, phase, attempt, deadline, payload, state, retry_pending, "
        "cancel_only, reason, saga_type, sent_lsn) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        f"ON CONFLICT (saga_id, step, phase) {conflict}",
        (w.saga_id, w.step, w.phase, w.attempt, datetime.fromtimestamp(w.deadline, tz=UTC), Jsonb(w.payload), w.state,
         w.retry_pending, w.cancel_only, w.reason, defn.name, sent_lsn))
    return cur.rowcount == 1


async def _wal_position(conn: psycopg.AsyncConnection, slot: str | None) -> str | None:
    """Past what this transaction wrote so far (only asked when a slot is there to compare with)."""
    if slot is None:
        return None
    cur = await conn.execute("SELECT pg_current_wal_insert_lsn()::text")
    row = await cur.fetchone()
    return row[0] if row else None


async def _confirmed(conn: psycopg.AsyncConnection, slot: str) -> int | None:
    """What the connector's slot has confirmed (None: no such slot, so nothing is captured)."""
    cur = await conn.execute("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s", (slot,))
    row = await cur.fetchone()
    return lsn(row[0]) if row and row[0] else None


async def _emit(conn: psycopg.AsyncConnection, me: str, e: SagaEvent) -> None:
    await outbox.write_async(conn, events_aggregate(me), e.saga_id, f"Saga{e.kind.capitalize()}", e.model_dump())


async def _publish_outcome(conn: psycopg.AsyncConnection, defn: SagaDefinition, me: str, e: SagaEvent,
                           slot: str | None) -> None:
    """My step's event, and the watch on what it asks next: one transaction."""
    await _emit(conn, me, e)
    w = choreography.watch_for(defn, e)
    if w is not None:  # a repeated event does not reset a watch
        await _save_watch(conn, defn, w, keep_existing=True, sent_lsn=await _wal_position(conn, slot))


class Participant:
    """One participant service in every enabled saga it takes part in."""

    def __init__(self, sagas: Sagas, me: str, slot: str | None = None) -> None:
        self.sagas, self.me, self.handlers = sagas, me, sagas.handlers(me)
        self.slot = slot  # my connector's replication slot: has it captured what I asked?

    async def on_event(self, conn: psycopg.AsyncConnection, e: SagaEvent, now: float,
                       arrived_while_up: bool = False) -> None:
        """`arrived_while_up`: the event reached its topic while this worker ran (see participant.handle)."""
        defn = self.sagas.definition(e.saga)
        async with conn.transaction():
            await self._answer_watches(conn, defn, e, now)
            if e.kind == "outcome" and participant_of(defn, e.step) == self.me:
                w = choreography.watch_for(defn, e)  # my own event read back (the start event): watch step 1
                if w is not None:
                    await _save_watch(conn, defn, w, keep_existing=True)
            ask = choreography.ask_of(defn, e)
            if ask is not None and participant_of(defn, ask.step) == self.me:
                await self._act(conn, defn, e, ask, now, arrived_while_up)

    async def _answer_watches(self, conn: psycopg.AsyncConnection, defn: SagaDefinition, e: SagaEvent,
                              now: float) -> None:
        if e.kind != "outcome":
            return
        rows = await self._watches_of(conn, e.saga_id, e.step)
        if any(w.state == choreography.ABANDONED for w in rows) and not any(w.cancel_only for w in rows):
            # A scan gave the step up while this statement waited for its lock: the give-up's own
            # watch was inserted after this statement's snapshot, so it is not among the rows. Read
            # again (a new snapshot; the scan has committed, and no scan can take the step now that
            # its rows are locked): a success that misses that watch would leave it resending an
            # ask the step ignores (it acted), until it quarantined a saga that had ended well.
            rows = await self._watches_of(conn, e.saga_id, e.step)
        if not rows and e.action == "action" and e.step > 0 and participant_of(defn, e.step - 1) == self.me:
            # answered before I read my own event that asked for it: a tombstone, so no watch starts later
            if await _save_watch(conn, defn, Watch(e.saga_id, e.step, "action", e.attempt, now, e.payload,
                                                   state=choreography.ANSWERED), keep_existing=True):
                return
            # that read-back made the watch while this transaction looked (and committed it first):
            # answer it, or it would wait on, and resend, an ask already answered
            rows = await self._watches_of(conn, e.saga_id, e.step)
        for w in rows:
            watches, events = choreography.on_answer(defn, w, e, now)
            for nw in watches:
                if nw != w:
                    await _save_watch(conn, defn, nw)
            for ev in events:
                await _emit(conn, self.me, ev)

    @staticmethod
    async def _watches_of(conn: psycopg.AsyncConnection, saga_id: str, step: int) -> list[Watch]:
        cur = await conn.execute(f"SELECT {WATCH_COLUMNS} FROM saga_watches WHERE saga_id = %s AND step = %s FOR UPDATE",
                                 (saga_id, step))
        return [_watch(r) for r in await cur.fetchall()]

    async def _act(self, conn: psycopg.AsyncConnection, defn: SagaDefinition, e: SagaEvent, ask: choreography.Ask,
                   now: float, arrived_while_up: bool = False) -> None:
        step = defn.steps[ask.step]
        if ask.cancel_only:
            await participant.lock_step(conn, e.saga_id, ask.step)
            if await participant.acted(conn, e.saga_id, ask.step):
                # the asker gave up, but this step did act: its success stands (its event, in the
                # outbox since then, answers the asker's watch and moves the saga on)
                return
        name = step.command if ask.phase == "action" else step.compensation
        assert name is not None
        cmd = SagaCommand(saga_id=e.saga_id, saga=defn.name, step=ask.step, step_name=step.name, action=ask.phase,
                          participant=self.me, name=name, attempt=ask.attempt, deadline=ask.deadline,
                          payload=defn.payload_for(ask.step, e.payload), local_action=step.command is None)

        async def publish(conn: psycopg.AsyncConnection, cmd: SagaCommand, reply: SagaReply) -> None:
            await _publish_outcome(conn, defn, self.me, choreography.outcome_event(
                defn, cmd.saga_id, cmd.step, cmd.action, reply.outcome, reply.reason, cmd.attempt, e.payload, now),
                self.slot)

        await participant.handle(conn, self.handlers, cmd, now, publish, answer_repeats=False,
                                 arrived_while_up=arrived_while_up)

    async def due_asked(self, conn: psycopg.AsyncConnection, now: float) -> set[str]:
        """Participants whose due watches the scan will judge (the pipeline is asked about them
        first, outside the scan's transaction: the checks may take seconds while the broker is away)."""
        cur = await conn.execute("SELECT DISTINCT saga_type, step FROM saga_watches WHERE state = 'waiting' "
                                 "AND deadline < to_timestamp(%s) AND NOT retry_pending", (now,))
        return {participant_of(self.sagas.definition(t), step) for t, step in await cur.fetchall()}

    async def shift_watches(self, conn: psycopg.AsyncConnection, gap: float, now: float) -> int:
        """This participant's watch scan was away for `gap` seconds (until `now`): every deadline
        waiting since before then moves by as much, and each saga's timeline hears why. A watch set
        after (by the participant now back) was never left unread and keeps its deadline."""
        async with conn.transaction():
            cur = await conn.execute(f"UPDATE saga_watches SET deadline = deadline + make_interval(secs => %s), "
                                     f"updated_at = clock_timestamp() WHERE state = 'waiting' "
                                     f"AND updated_at < to_timestamp(%s) "
                                     f"RETURNING saga_type, {WATCH_COLUMNS}", (gap, now - gap))
            moved = await cur.fetchall()
            for row in moved:
                defn, w = self.sagas.definition(row[0]), _watch(row[1:])
                await _emit(conn, self.me, choreography.delay_event(
                    defn, w, now, f"the watch of {self.me} was away {gap:.1f}s"))
        return len(moved)

    async def scan_watches(self, conn: psycopg.AsyncConnection, now: float, limit: int = 100,
                           delays: Mapping[str, str | None] | None = None) -> int:
        """Due watches, taken by whichever worker of this participant locks them first. `delays`:
        per asked participant, why the pipeline may hold its answer (None: healthy); such a watch's
        deadline moves instead, as does one whose ask my connector has not captured yet. Without
        `delays`, every due watch is handled as due."""
        handled = 0
        async with conn.transaction():
            confirmed = await _confirmed(conn, self.slot) if self.slot is not None else None
            cur = await conn.execute(f"SELECT saga_type, {WATCH_COLUMNS}, sent_lsn FROM saga_watches "
                                     "WHERE state = 'waiting' AND deadline < to_timestamp(%s) ORDER BY deadline "
                                     "LIMIT %s FOR UPDATE SKIP LOCKED", (now, limit))
            for row in await cur.fetchall():
                defn, w, sent_lsn = self.sagas.definition(row[0]), _watch(row[1:-1]), row[-1]
                # no slot named: not checked; no slot found: nothing is captured
                uncaptured = (self.slot is not None and sent_lsn is not None
                              and (confirmed is None or lsn(str(sent_lsn)) > confirmed))
                asked = participant_of(defn, w.step)
                moved = None
                if delays is not None and not w.retry_pending:
                    if asked not in delays:
                        continue  # came due after the pipeline was asked: the next scan takes it
                    why = delays[asked] or (NOT_CAPTURED if uncaptured else None)
                    moved = choreography.on_delay(defn, w, now, why) if why is not None else None
                watches, events = moved if moved is not None else choreography.on_due(defn, w, now)
                for ev in events:  # first: a new ask's WAL position must be past it
                    await _emit(conn, self.me, ev)
                if any(ev.kind in ("resend", "abandon") for ev in events):
                    sent_lsn = await _wal_position(conn, self.slot)
                for nw in watches:
                    await _save_watch(conn, defn, nw, sent_lsn=sent_lsn if nw.state == choreography.WAITING else None)
                handled += 1
        return handled


async def take_over(conn: psycopg.AsyncConnection, sagas: Sagas, me: str, saga_id: str, action: str, by: str,
                    why: str, now: float) -> str | None:
    """A person's decision on a FAILED choreographed saga, run at participant `me` (in its own
    database, under the watch's row lock, its event in its outbox in the same transaction).
    Returns the step name whose watch it took over, or None when `me` holds no FAILED watch of it."""
    async with conn.transaction():
        cur = await conn.execute(f"SELECT saga_type, {WATCH_COLUMNS} FROM saga_watches WHERE saga_id = %s "
                                 "AND state = %s FOR UPDATE", (saga_id, choreography.FAILED))
        row = await cur.fetchone()
        if row is None:
            return None
        defn, w = sagas.definition(row[0]), _watch(row[1:])
        watches, events = choreography.take_over(defn, w, action, by, why, now)
        for ev in events:  # first: the watch's ask must be past it in the WAL
            await _emit(conn, me, ev)
        sent_lsn = await _wal_position(conn, current().service(me).slot)
        for nw in watches:
            await _save_watch(conn, defn, nw, sent_lsn=sent_lsn if nw.state == choreography.WAITING else None)
        return defn.steps[w.step].name
