"""The Faust app of one read model: its own consumer group and principal, one actor per source
partition (ordered within it), its counters in Faust tables (memory store, recovered from their
changelog topics after a restart), a batch acknowledged only after the database and the
changelog hold it."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import faust
from prometheus_client import generate_latest

from stack.kafka_client import KafkaAccess
from streams.deadletter import DeadLetterPublisher, RawMessage
from streams.durable import EXIT_UNAPPLIABLE, Database
from streams.faust_app import new_app
from streams.health import WorkerState
from streams.liveness import Liveness, install_watchdog, restart_in_place
from streams.read_models.batch import ReadModelBatch, expect_first, skipped_ahead
from streams.read_models.plugin import ReadModel
from streams.read_models.tables import DELIVERIES, SOURCE_PARTITION, SourcePartitionTable, delivered

log = logging.getLogger(__name__)
CHANGELOG_TIMEOUT_S = 60.0   # a batch whose changelog records are not all in the broker by then is not acknowledged


@dataclass(frozen=True)
class ReadModelSettings:
    kafka: KafkaAccess     # the read model's own principal (connectors/acls.py)
    dsn: str               # its service's database
    web_port: int
    batch_max: int = 2000
    batch_within: float = 0.05
    session_timeout: float = 30.0
    stall_after: float = 30.0
    stall_restart: float = 60.0


def _raw(message) -> RawMessage:
    return RawMessage(message.topic, message.partition, message.offset, message.key, message.value,
                      tuple(message.headers or ()), message.timestamp)


def create_app(model: ReadModel, ws: ReadModelSettings) -> faust.App:
    # Faust's own drain until the direct one is proven here in the full tier (a CI run failed its kill -9 test)
    app = new_app(model.group_id, ws.kafka, ws.web_port, ws.session_timeout, ws.batch_max, direct_drain=False)
    app.conf.topic_partitions = model.partitions
    app.conf.stream_recovery_delay = 0.5   # recover the tables as soon as the partitions are assigned
    app.conf.Table = SourcePartitionTable  # type: ignore[assignment]  # Faust types the setting loosely
    # keys and values as JSON (Faust's default without a type): str keys, [count, position] values
    tables = {name: app.Table(name, default=None, partitions=model.partitions, help=f"{model.name} counter {name}")
              for name in model.counters}
    topic = app.topic(*model.sources, key_serializer="raw", value_serializer="raw", allow_empty=True)
    state = WorkerState(model.name, stall_after=ws.stall_after)
    dead_letters = DeadLetterPublisher(ws.kafka, model.dead_letter_topic, model.name)
    liveness = Liveness(ws.stall_restart)

    @app.agent(topic, name=model.worker_name, isolated_partitions=True)
    async def fold(stream):  # one actor per source partition: its tables' keys live on that partition
        batch = ReadModelBatch(model, tables, Database(ws.dsn, model.group_id), dead_letters, liveness)
        next_offsets: dict[tuple[str, int], int] = {}
        async for events in stream.noack_take(ws.batch_max, within=ws.batch_within):
            messages = [_raw(e.message) for e in events]
            # a new actor (a start, a rebalance) expects its first message at the group's offset
            await expect_first(messages, next_offsets, offsets.first_to_deliver, model.name)
            if lost := skipped_ahead(messages, next_offsets):   # nothing folded nor acknowledged: a fresh
                restart_in_place(f"read model {model.name}: {lost}")   # process gets it all again, in order
            partitions = {(m.topic, m.partition) for m in messages}
            assert len(partitions) == 1, f"isolated partitions gave one actor {partitions}"
            SOURCE_PARTITION.set(messages[0].partition)
            deliveries: list = []
            DELIVERIES.set(deliveries)
            try:
                outcome = await batch.process(messages)
                await app.producer.flush()   # hands the buffered changelog records to the client ...
            except Exception as exc:  # noqa: BLE001 - nothing acknowledged: redelivered after the restart
                log.critical("read model %s cannot go on: %s. Exiting without acknowledging.", model.name, exc)
                logging.shutdown()
                os._exit(EXIT_UNAPPLIABLE)
            try:
                await delivered(deliveries, CHANGELOG_TIMEOUT_S)   # ... and the broker took every one
            except Exception as exc:  # noqa: BLE001 - a fresh process recovers the tables and gets the batch again
                restart_in_place(f"changelog records of {model.name} not delivered ({exc!r}); batch not acknowledged")
            for event in events:
                await stream.ack(event)
            last: dict[tuple[str, int], int] = {}
            for m in messages:
                last[(m.topic, m.partition)] = max(m.offset, last.get((m.topic, m.partition), -1))
            state.record(outcome, last)
            liveness.acknowledged(last)

    # the changelogs' partitions are assigned too (table recovery) but never acknowledged: not a stall
    offsets = install_watchdog(app, liveness, ws.kafka, frozenset(model.sources))

    @app.page("/healthz")
    async def healthz(web, request):
        assigned = {(tp.topic, tp.partition) for tp in app.consumer.assignment()
                    if tp.topic in model.sources} if app.consumer else set()
        highwaters, positions = {}, {}
        for tp in app.consumer.assignment() if app.consumer else ():
            if tp.topic not in model.sources:
                continue
            try:
                high = app.consumer.highwater(tp)
                position = await app.consumer.position(tp)
            except Exception:  # noqa: BLE001 - unknown before the first fetch
                continue
            if high is not None:
                highwaters[(tp.topic, tp.partition)] = high
            if position is not None:
                positions[(tp.topic, tp.partition)] = position
        health = state.evaluate(assigned, highwaters, positions)
        return web.json({"healthy": health.healthy, "reason": health.reason, **health.details},
                        status=200 if health.healthy else 503)

    @app.page("/metrics")
    async def metrics(web, request):
        return web.bytes(generate_latest(state.registry), content_type="text/plain; version=0.0.4")

    return app
