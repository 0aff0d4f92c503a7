"""Faust apps of the choreographed mode: one per participant (the events topics of its
neighbours, and a timer over its due watches) and the monitor (every saga event, recorded for
observation). Same delivery rules as the orchestrated apps: one transaction per message,
retried while the database is down, dead-lettered if unparseable, acknowledged after commit."""
from __future__ import annotations

import time

import faust
import psycopg

from schemas.outbox import parse_outbox
from streams.deadletter import DeadLetterPublisher, RawMessage
from streams.faust_app import new_app
from streams.liveness import Liveness
from streams.sagas import monitor
from streams.sagas.apps import (
    Database,
    SagaWorkerSettings,
    consume,
    health_page,
    install_housekeeping,
    place_order,
    run_durably,
    saga_metrics,
)
from streams.sagas.choreography_runtime import Participant, monitor_subscriptions, subscriptions, to_event
from streams.sagas.handlers import HANDLERS

MONITOR = "monitor"


def _agent_name(topic: str) -> str:
    return topic.removeprefix("outbox.event.")


def create_choreography_participant_app(service: str, ws: SagaWorkerSettings) -> faust.App:
    defn = place_order(ws)
    me = Participant(defn, service, HANDLERS[service])
    app = new_app(f"cdc-choreography-{service}", ws.bootstrap, ws.web_port, ws.session_timeout, batch_max=200)
    dlq = DeadLetterPublisher(ws.bootstrap, f"dlq.saga.{service}", f"choreography-{service}")

    async def handle(conn: psycopg.AsyncConnection, msg: RawMessage) -> None:
        event = to_event(defn, parse_outbox(msg.key, msg.value, list(msg.headers)), msg.timestamp or time.time())
        if event is not None:
            await me.on_event(conn, event, time.time())

    liveness = Liveness(ws.stall_restart)
    for topic in subscriptions(defn, service):
        consume(app, topic, _agent_name(topic), dlq, ws.dsn, liveness, handle)
    watch_db = Database(ws.dsn, f"cdc-choreography-{service}-watches")

    @app.timer(interval=ws.timeout_scan_every)
    async def watches() -> None:  # durable timeouts: state in the database, any worker may scan
        await run_durably("watches", watch_db, lambda conn: me.scan_watches(conn, time.time()), liveness)

    hk = install_housekeeping(app, ws, service, subscriptions(defn, service), liveness)
    health_page(app, liveness, lambda: {"housekeeping": hk.stats()})
    return app


def create_monitor_app(ws: SagaWorkerSettings) -> faust.App:
    defn = place_order(ws)
    app = new_app("cdc-choreography-monitor", ws.bootstrap, ws.web_port, ws.session_timeout, batch_max=200)
    dlq = DeadLetterPublisher(ws.bootstrap, "dlq.saga.monitor", "choreography-monitor")

    async def handle(conn: psycopg.AsyncConnection, msg: RawMessage) -> None:
        envelope = parse_outbox(msg.key, msg.value, list(msg.headers))
        event = to_event(defn, envelope, msg.timestamp or time.time())
        if event is not None:
            await monitor.record(conn, defn, event, envelope.event_id)

    saga_metrics(app, ws.dsn)
    liveness = Liveness(ws.stall_restart)
    for topic in monitor_subscriptions(defn):
        consume(app, topic, _agent_name(topic), dlq, ws.dsn, liveness, handle)
    hk = install_housekeeping(app, ws, "orchestrator", monitor_subscriptions(defn), liveness)
    health_page(app, liveness, lambda: {"housekeeping": hk.stats()})
    return app
