"""Faust apps of the saga runtime: one per participant (its commands topic) and the
orchestrator (the start events of every enabled saga, replies, and a timer that scans due timeouts). Each batch of a
partition is one database transaction (each message in its own savepoint), retried while the
database is down; a message that cannot be handled is dead-lettered alone; offsets are
acknowledged only after the commit."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import faust
import psycopg
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from psycopg.pq import TransactionStatus

from schemas.outbox import parse_outbox
from schemas.saga import SagaCommand, SagaReply
from services.registry import SAGA_STORE, current
from stack.kafka_client import KafkaAccess
from streams.deadletter import DeadLetter, DeadLetterPublisher, RawMessage
from streams.durable import Database, bad_message, run_durably
from streams.faust_app import new_app
from streams.liveness import GroupOffsets, Liveness, install_watchdog
from streams.sagas import clock, orchestrator, participant
from streams.sagas.enabled import Sagas, enabled
from streams.sagas.handlers import Handler
from streams.sagas.handover import GROUP_PREFIX
from streams.sagas.pipeline import PipelineProbe, Route
from streams.sagas.retention import Housekeeping
from streams.sagas.stuck import STUCK, STUCK_AFTER_S
from streams.sagas.topics import ROUTED_PREFIX, commands_topic, replies_topic
from streams.topic_retention import redelivery_keep_seconds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SagaWorkerSettings:
    kafka: KafkaAccess  # the worker's own principal (connectors/acls.py says what it may do)
    dsn: str
    web_port: int
    session_timeout: float = 30.0
    timeout_scan_every: float = 0.5
    timeout_scale: float = 1.0      # multiplies every step timeout of the saga definitions
    stall_restart: float = 60.0     # restart in place after a partition is behind this long without progress
    housekeeping_every: float = 30.0  # purge published outbox rows and expired inbox rows this often
    connect_url: str | None = None  # Kafka Connect's REST API: whether a step's capture connectors run


def _raw(message) -> RawMessage:
    return RawMessage(message.topic, message.partition, message.offset, message.key, message.value,
                      tuple(message.headers or ()), message.timestamp)


class _Isolate(Exception):
    """A bad message left the batch's transaction unusable: redo the batch a message at a time."""


async def apply_batch(conn: psycopg.AsyncConnection, msgs: list[RawMessage],
                      handle: Callable[[psycopg.AsyncConnection, RawMessage], Awaitable[object]],
                      together: bool = True) -> list[DeadLetter]:
    """A batch in one transaction: one commit (one WAL flush) for many messages. Each handler
    keeps its SQL in its own transaction block (a savepoint here), so a bad message is
    dead-lettered alone; a transient error rolls the whole batch back and it is redone.
    `together=False`: one transaction per message (after a deadlock between batches, or a bad
    message that left the batch's transaction unusable)."""
    dead: list[DeadLetter] = []
    async with conn.transaction() if together else contextlib.nullcontext():
        for msg in msgs:
            try:
                if together:
                    await handle(conn, msg)
                else:
                    async with conn.transaction():
                        await handle(conn, msg)
            except Exception as exc:  # noqa: BLE001 - classified: bad messages go to the DLQ, the rest up
                if not bad_message(exc):
                    raise
                if together and conn.info.transaction_status == TransactionStatus.INERROR:
                    raise _Isolate from exc
                dead.append(DeadLetter(msg, f"malformed: {type(exc).__name__}: {exc}"[:1000]))
    return dead


async def apply_messages(conn: psycopg.AsyncConnection, msgs: list[RawMessage],
                         handle: Callable[[psycopg.AsyncConnection, RawMessage], Awaitable[object]]) -> list[DeadLetter]:
    """A partition's batch as `apply_batch` takes it; redone a message at a time when another
    actor took the same rows in another order (a deadlock), or a bad message broke the batch's
    transaction. Returns the dead letters."""
    try:
        return await apply_batch(conn, msgs, handle)
    except (psycopg.errors.DeadlockDetected, _Isolate):
        return await apply_batch(conn, msgs, handle, together=False)


def consume(app: faust.App, topic_name: str, name: str, dlq: DeadLetterPublisher, dsn: str, liveness: Liveness,
            handle: Callable[[psycopg.AsyncConnection, RawMessage], Awaitable[object]]) -> None:
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw", allow_empty=True)

    @app.agent(topic, name=name, isolated_partitions=True)
    async def agent(stream):  # one actor per partition: one saga's messages stay in order
        db = Database(dsn, app.conf.id)
        async for events in stream.noack_take(200, within=0.01):
            msgs = [_raw(event.message) for event in events]
            dead: list[DeadLetter] = []

            async def work(conn: psycopg.AsyncConnection, msgs: list[RawMessage] = msgs,
                           dead: list[DeadLetter] = dead) -> None:
                dead[:] = await apply_messages(conn, msgs, handle)

            await run_durably(name, db, work, liveness)
            if dead:
                await dlq.publish(dead)
            last: dict[tuple[str, int], int] = {}
            for event in events:
                await stream.ack(event)
                tp = (event.message.topic, event.message.partition)
                last[tp] = max(event.message.offset, last.get(tp, -1))
            liveness.acknowledged(last)


def health_page(app: faust.App, liveness: Liveness, kafka: KafkaAccess, extra: Callable[[], dict] | None = None) -> None:
    """200 while partitions are assigned and none is behind without progress; the watchdog
    restarts the process when one is (so a stall shows here only briefly)."""
    offsets = install_watchdog(app, liveness, kafka)

    @app.page("/healthz")
    async def healthz(web, request):
        try:
            ends, starts = await offsets.read()
        except Exception as exc:  # noqa: BLE001 - broker away: say so
            return web.json({"healthy": False, "reason": f"offsets unavailable: {exc}"}, status=503)
        stalled = liveness.stalled(ends, starts)
        assigned = sorted(f"{t}:{p}" for t, p in ends)
        healthy = bool(assigned) and not stalled
        reason = "; ".join(stalled) if stalled else ("ok" if assigned else "no partitions assigned")
        lag = {f"{t}:{p}": n for (t, p), n in liveness.behind(ends, starts).items()}
        return web.json({"healthy": healthy, "reason": reason, "assigned": assigned, "lag": lag,
                         **(extra() if extra else {})}, status=200 if healthy else 503)


def install_housekeeping(app: faust.App, ws: SagaWorkerSettings, service: str, topics: list[str],
                         liveness: Liveness) -> Housekeeping:
    """A timer that purges the service's published outbox rows and expired inbox rows."""
    hk = Housekeeping(slot=current().service(service).slot, inbox_keep_s=None)
    db = Database(ws.dsn, f"cdc-saga-{service}-housekeeping")
    retention: list[float | None] = []

    @app.timer(interval=ws.housekeeping_every)
    async def housekeeping() -> None:
        if not retention:
            try:
                retention.append(await asyncio.to_thread(redelivery_keep_seconds, ws.kafka, topics))
            except Exception as exc:  # noqa: BLE001 - try again next time; keep everything meanwhile
                log.warning("housekeeping: topic retention unavailable (%s); inbox rows kept", exc)
                return
            hk.inbox_keep_s = retention[0]
        await run_durably("housekeeping", db, hk.run, liveness)

    return hk


class SagaApp:
    """What every saga worker has, built once: its Faust app, a dead-letter topic
    (dlq.saga.<worker>), a liveness watchdog, durable timers, housekeeping and /healthz. Add
    consumers and timers, then `done()`."""

    def __init__(self, app_id: str, worker: str, service: str, ws: SagaWorkerSettings) -> None:
        self.ws, self.service = ws, service  # service: whose database the worker writes
        # Faust's own drain until the direct one is proven for sagas in the full tier (a CI run failed there)
        self.app = new_app(app_id, ws.kafka, ws.web_port, ws.session_timeout, batch_max=200, direct_drain=False)
        self.dlq = DeadLetterPublisher(ws.kafka, f"dlq.saga.{worker}", app_id)
        self.liveness = Liveness(ws.stall_restart)
        self.topics: list[str] = []

    def consume(self, topic: str, name: str,
                handle: Callable[[psycopg.AsyncConnection, RawMessage], Awaitable[object]]) -> None:
        consume(self.app, topic, name, self.dlq, self.ws.dsn, self.liveness, handle)
        self.topics.append(topic)

    def every(self, name: str, work: Callable[[psycopg.AsyncConnection], Awaitable[object]]) -> None:
        """A timer over state kept in the database (any worker may run it), retried while it is down."""
        db = Database(self.ws.dsn, f"{self.app.conf.id}-{name}")

        @self.app.timer(interval=self.ws.timeout_scan_every, name=name)
        async def tick() -> None:
            await run_durably(name, db, work, self.liveness)

    def probe(self, own_topics: set[str]) -> PipelineProbe:
        """Asks the pipeline before a step times out; `own_topics`: where this worker's answers
        arrive (a backlog there is a delay of the pipeline, not of the participant)."""
        offsets = GroupOffsets(self.app, self.ws.kafka)

        async def own_backlog() -> int:
            ends, starts = await offsets.read()
            return sum(n for (topic, _), n in self.liveness.behind(ends, starts).items() if topic in own_topics)

        return PipelineProbe(self.ws.kafka, self.ws.connect_url, own_backlog)

    def scan(self, scanner: str, work: Callable[[psycopg.AsyncConnection, float, float], Awaitable[object]]) -> None:
        """A timeout scan: `work(conn, now, gap)`, where gap is how long this scanner was away (its
        clock is in the database, so a restart knows), 0 when it ticked recently."""
        async def tick(conn: psycopg.AsyncConnection) -> None:
            now = time.time()
            async with conn.transaction():
                gap = await clock.tick(conn, scanner, now)
            await work(conn, now, gap)

        self.every(scanner, tick)

    def done(self) -> faust.App:
        hk = install_housekeeping(self.app, self.ws, self.service, self.topics, self.liveness)
        health_page(self.app, self.liveness, self.ws.kafka, lambda: {"housekeeping": hk.stats()})
        return self.app


def arrived_since(msg: RawMessage, up_since: float) -> bool:
    """Did the message reach its topic while this worker was running (its broker timestamp)?"""
    return msg.timestamp is not None and msg.timestamp >= up_since


def command_handler(handlers: dict[str, Handler],
                    up_since: float | None = None) -> Callable[[psycopg.AsyncConnection, RawMessage], Awaitable[None]]:
    """A participant's message handler: the outbox envelope parsed at the edge, then `participant.handle`."""
    started = time.time() if up_since is None else up_since

    async def handle(conn: psycopg.AsyncConnection, msg: RawMessage) -> None:
        envelope = parse_outbox(msg.key, msg.value, list(msg.headers))
        await participant.handle(conn, handlers, SagaCommand.model_validate(envelope.payload),
                                 arrived_while_up=arrived_since(msg, started))

    return handle


def create_participant_app(service: str, ws: SagaWorkerSettings) -> faust.App:
    saga = SagaApp(f"cdc-saga-{service}", service, service, ws)
    saga.consume(commands_topic(service), f"{service}-commands", command_handler(sagas_of(ws).handlers(service)))
    return saga.done()


DEADLINES_MISSED = ("SELECT count(*) FILTER (WHERE kind = 'timed_out'), count(*) FILTER (WHERE kind = 'delayed'), "
                    "count(DISTINCT saga_id) FILTER (WHERE kind = 'delayed') FROM saga_events "
                    "WHERE kind IN ('timed_out', 'delayed')")


def saga_metrics(app: faust.App, dsn: str) -> None:
    """`cdc_sagas{state=...}` read from the orchestrator's database at each scrape; alert on
    cdc_sagas{state="FAILED"} above a threshold (quarantined sagas need a person).
    `cdc_saga_deadlines_missed{cause=participant_timeout|infrastructure_delay}` tells an outage
    (deadlines moved) from a participant that did not answer (resent, then compensated)."""
    registry = CollectorRegistry()
    gauge = Gauge("cdc_sagas", "Saga instances by state", ["state"], registry=registry)
    missed = Gauge("cdc_saga_deadlines_missed", "Step deadlines that passed, by cause: the participant's "
                   "(timed out: resent or compensated) or the pipeline's (the deadline moved)", ["cause"],
                   registry=registry)
    delayed = Gauge("cdc_saga_delayed_sagas", "Sagas whose deadline moved for the pipeline at least once",
                    registry=registry)
    stuck = Gauge("cdc_sagas_stuck", f"Sagas neither ended nor moved for {STUCK_AFTER_S:.0f} s (cdc observe sagas)",
                  registry=registry)

    @app.page("/metrics")
    async def metrics(web, request):
        async with await psycopg.AsyncConnection.connect(dsn, connect_timeout=5) as conn:
            cur = await conn.execute("SELECT state, count(*) FROM saga_instances GROUP BY state")
            counts = dict(await cur.fetchall())
            cur = await conn.execute(DEADLINES_MISSED)
            timeouts, delays, delayed_sagas = await cur.fetchone() or (0, 0, 0)
            cur = await conn.execute(f"SELECT count(*) FROM saga_instances WHERE {STUCK}", (STUCK_AFTER_S,))
            stuck_now = (await cur.fetchone() or (0,))[0]
        for state in ("RUNNING", "COMPENSATING", "COMPLETED", "COMPENSATED", "FAILED", "RESOLVED"):
            gauge.labels(state).set(counts.get(state, 0))
        missed.labels("participant_timeout").set(timeouts)
        missed.labels("infrastructure_delay").set(delays)
        delayed.set(delayed_sagas)
        stuck.set(stuck_now)
        return web.bytes(generate_latest(registry), content_type="text/plain; version=0.0.4")


def sagas_of(ws: SagaWorkerSettings) -> Sagas:
    return enabled(ws.timeout_scale)


def connector_of(service: str) -> str:
    return current().service(service).connector


def orchestrated_routes(sagas: Sagas) -> dict[str, Route]:
    """Per participant: its command leaves through the saga store's connector, its reply through
    its own; its group reads its commands topic."""
    store = connector_of(SAGA_STORE)
    return {p: Route((store, connector_of(p)), GROUP_PREFIX["orchestration"] + p, (commands_topic(p),))
            for p in sagas.participants("orchestration")}


def agent_name(topic: str) -> str:
    return topic.removeprefix(ROUTED_PREFIX)


def create_orchestrator_app(ws: SagaWorkerSettings) -> faust.App:
    sagas = sagas_of(ws)
    saga = SagaApp("cdc-saga-orchestrator", "orchestrator", SAGA_STORE, ws)

    async def on_start_event(conn: psycopg.AsyncConnection, msg: RawMessage) -> None:
        event = parse_outbox(msg.key, msg.value, list(msg.headers))
        plugin = sagas.starting(msg.topic, event.event_type)
        if plugin is not None:
            key = plugin.business_key(event.payload)  # a bad event never starts a saga
            await orchestrator.start(conn, plugin.definition, key, event.payload, time.time())

    async def on_reply(conn: psycopg.AsyncConnection, msg: RawMessage) -> None:
        event = parse_outbox(msg.key, msg.value, list(msg.headers))
        await orchestrator.on_reply(conn, sagas, SagaReply.model_validate(event.payload), time.time())

    probe = saga.probe({replies_topic(p.name) for p in sagas.plugins})
    routes = orchestrated_routes(sagas)
    store_slot = current().service(SAGA_STORE).slot

    async def scan(conn: psycopg.AsyncConnection, now: float, gap: float) -> None:
        for defn in sagas.definitions:
            if gap:
                await orchestrator.shift_deadlines(conn, defn, gap, away_since=now - gap)
            due = await orchestrator.due_participants(conn, defn, now)
            delays = {p: await probe.delay(routes[p]) for p in due}
            await orchestrator.scan_timeouts(conn, defn, now, delays=delays, slot=store_slot)

    saga_metrics(saga.app, ws.dsn)
    for topic in sagas.start_topics:
        saga.consume(topic, agent_name(topic), on_start_event)
    for name in (p.name for p in sagas.plugins):
        saga.consume(replies_topic(name), agent_name(replies_topic(name)), on_reply)
    # durable timeouts: the deadlines are in the database, any orchestrator worker may scan them
    saga.scan("timeouts", scan)
    return saga.done()
