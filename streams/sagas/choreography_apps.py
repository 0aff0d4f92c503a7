"""Faust apps of the choreographed mode: one per participant (the events topics of its
neighbours, and a timer over its due watches) and the monitor (every saga event, recorded for
observation). Same delivery rules as the orchestrated apps (`SagaApp`): a transaction per batch,
retried while the database is down, a bad message dead-lettered alone, acknowledged after commit."""
from __future__ import annotations

import time

import faust
import psycopg

from schemas.outbox import parse_outbox
from services.registry import SAGA_STORE
from streams.deadletter import RawMessage
from streams.sagas import monitor
from streams.sagas.apps import SagaApp, SagaWorkerSettings, agent_name, saga_metrics, sagas_of
from streams.sagas.choreography_runtime import Participant, monitor_subscriptions, subscriptions, to_event


def create_choreography_participant_app(service: str, ws: SagaWorkerSettings) -> faust.App:
    sagas = sagas_of(ws)
    me = Participant(sagas, service)
    saga = SagaApp(f"cdc-choreography-{service}", service, service, ws)

    async def handle(conn: psycopg.AsyncConnection, msg: RawMessage) -> None:
        event = to_event(sagas, msg.topic, parse_outbox(msg.key, msg.value, list(msg.headers)),
                         msg.timestamp or time.time())
        if event is not None:
            await me.on_event(conn, event, time.time())

    for topic in subscriptions(sagas, service):
        saga.consume(topic, agent_name(topic), handle)
    # durable timeouts: the watches are in the database, any worker of this participant may scan them
    saga.every("watches", lambda conn: me.scan_watches(conn, time.time()))
    return saga.done()


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
