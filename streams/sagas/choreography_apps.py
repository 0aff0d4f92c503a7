"""Faust apps of the choreographed mode: one per participant (the events topics of its
neighbours, and a timer over its due watches) and the monitor (every saga event, recorded for
observation). Same delivery rules as the orchestrated apps (`SagaApp`): a transaction per batch,
retried while the database is down, a bad message dead-lettered alone, acknowledged after commit."""
from __future__ import annotations

import time

import faust
import psycopg

from schemas.outbox import parse_outbox
from services.registry import SAGA_STORE, current
from streams.deadletter import RawMessage
from streams.sagas import monitor
from streams.sagas.apps import (
    SagaApp,
    SagaWorkerSettings,
    agent_name,
    arrived_since,
    connector_of,
    saga_metrics,
    sagas_of,
)
from streams.sagas.choreography_runtime import Participant, monitor_subscriptions, subscriptions, to_event
from streams.sagas.enabled import Sagas
from streams.sagas.handover import GROUP_PREFIX
from streams.sagas.pipeline import Route


def create_choreography_participant_app(service: str, ws: SagaWorkerSettings) -> faust.App:
    sagas = sagas_of(ws)
    me = Participant(sagas, service, current().service(service).slot)
    up_since = time.time()  # an ask that reached its topic after this is late for the pipeline, not dropped
    saga = SagaApp(f"cdc-choreography-{service}", service, service, ws)

    async def handle(conn: psycopg.AsyncConnection, msg: RawMessage) -> None:
        event = to_event(sagas, msg.topic, parse_outbox(msg.key, msg.value, list(msg.headers)),
                         msg.timestamp or time.time())
        if event is not None:
            await me.on_event(conn, event, time.time(), arrived_since(msg, up_since))

    for topic in subscriptions(sagas, service):
        saga.consume(topic, agent_name(topic), handle)
    probe = saga.probe(set(subscriptions(sagas, service)))
    routes = choreographed_routes(sagas, service)

    async def scan(conn: psycopg.AsyncConnection, now: float, gap: float) -> None:
        if gap:
            await me.shift_watches(conn, gap, now)
        due = await me.due_asked(conn, now)
        delays = {p: await probe.delay(routes[p]) for p in due if p in routes}
        await me.scan_watches(conn, now, delays=delays)

    # durable timeouts: the watches are in the database, any worker of this participant may scan them
    saga.scan(f"watches-{service}", scan)
    return saga.done()


def choreographed_routes(sagas: Sagas, me: str) -> dict[str, Route]:
    """Per participant I may ask: my event leaves through my connector, its answer through its
    own; its group reads its neighbours' events (and the start topic)."""
    return {p: Route((connector_of(me), connector_of(p)), GROUP_PREFIX["choreography"] + p,
                     tuple(subscriptions(sagas, p)))
            for p in sagas.participants("choreography")}


def create_monitor_app(ws: SagaWorkerSettings) -> faust.App:
    sagas = sagas_of(ws)
    saga = SagaApp("cdc-choreography-monitor", "monitor", SAGA_STORE, ws)  # records in the saga store

    async def handle(conn: psycopg.AsyncConnection, msg: RawMessage) -> None:
        envelope = parse_outbox(msg.key, msg.value, list(msg.headers))
        event = to_event(sagas, msg.topic, envelope, msg.timestamp or time.time())
        if event is not None:
            await monitor.record(conn, sagas.definition(event.saga), event, envelope.event_id)

    saga_metrics(saga.app, ws.dsn)
    for topic in monitor_subscriptions(sagas):
        saga.consume(topic, agent_name(topic), handle)
    return saga.done()
