"""Faust apps of the choreographed mode: one per participant (the events topics of its
neighbours, and a timer over its due watches) and the monitor (every saga event, recorded for
observation). Same delivery rules as the orchestrated apps (`SagaApp`): a transaction per batch,
retried while the database is down, a bad message dead-lettered alone, acknowledged after commit."""
from __future__ import annotations

import time

import faust
import psycopg

from schemas.outbox import parse_outbox
from streams.deadletter import RawMessage
from streams.sagas import monitor
from streams.sagas.apps import SagaApp, SagaWorkerSettings, place_order, saga_metrics
from streams.sagas.choreography_runtime import Participant, monitor_subscriptions, subscriptions, to_event
from streams.sagas.handlers import HANDLERS


def _agent_name(topic: str) -> str:
    return topic.removeprefix("outbox.event.")


def create_choreography_participant_app(service: str, ws: SagaWorkerSettings) -> faust.App:
    defn = place_order(ws)
    me = Participant(defn, service, HANDLERS[service])
    saga = SagaApp(f"cdc-choreography-{service}", service, service, ws)

    async def handle(conn: psycopg.AsyncConnection, msg: RawMessage) -> None:
        event = to_event(defn, parse_outbox(msg.key, msg.value, list(msg.headers)), msg.timestamp or time.time())
        if event is not None:
            await me.on_event(conn, event, time.time())

    for topic in subscriptions(defn, service):
        saga.consume(topic, _agent_name(topic), handle)
    # durable timeouts: the watches are in the database, any worker of this participant may scan them
    saga.every("watches", lambda conn: me.scan_watches(conn, time.time()))
    return saga.done()


def create_monitor_app(ws: SagaWorkerSettings) -> faust.App:
    defn = place_order(ws)
    saga = SagaApp("cdc-choreography-monitor", "monitor", "orchestrator", ws)  # records in the sagas' database

    async def handle(conn: psycopg.AsyncConnection, msg: RawMessage) -> None:
        envelope = parse_outbox(msg.key, msg.value, list(msg.headers))
        event = to_event(defn, envelope, msg.timestamp or time.time())
        if event is not None:
            await monitor.record(conn, defn, event, envelope.event_id)

    saga_metrics(saga.app, ws.dsn)
    for topic in monitor_subscriptions(defn):
        saga.consume(topic, _agent_name(topic), handle)
    return saga.done()
