"""The Faust app of one replication pair: its own consumer group, one actor per partition
(ordered within it), batches acknowledged only after their transaction committed."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import faust
from prometheus_client import generate_latest

from streams.deadletter import DeadLetterPublisher, RawMessage
from streams.faust_app import new_app
from streams.health import WorkerState
from streams.replicator import FatalApplyError, PairReplicator
from streams.sink import ReplicaSink
from streams.spec import ReplicationPair

log = logging.getLogger(__name__)
EXIT_UNAPPLIABLE = 70  # the batch is not acknowledged: it is redelivered once the deployment is fixed


@dataclass(frozen=True)
class WorkerSettings:
    bootstrap: str
    target_dsn: str
    web_port: int = 6066
    batch_max: int = 5000
    batch_within: float = 0.05
    session_timeout: float = 30.0   # tests shorten it so takeovers are quick
    rebalance_timeout: float = 30.0
    stall_after: float = 30.0


def _raw(message) -> RawMessage:
    return RawMessage(message.topic, message.partition, message.offset, message.key, message.value,
                      tuple(message.headers or ()))


def create_app(pair: ReplicationPair, ws: WorkerSettings) -> faust.App:
    app = new_app(pair.group_id, ws.bootstrap, ws.web_port, ws.session_timeout, ws.batch_max)
    topic = app.topic(pair.source_topic, key_serializer="raw", value_serializer="raw", allow_empty=True)
    state = WorkerState(pair.name, stall_after=ws.stall_after)
    dead_letters = DeadLetterPublisher(ws.bootstrap, pair.dead_letter_topic, pair.name)

    @app.agent(topic, name=f"replicate-{pair.name}", isolated_partitions=True)
    async def replicate(stream):  # one call per assigned partition
        sink = ReplicaSink(pair, ws.target_dsn)
        replicator = PairReplicator(pair, sink, dead_letters, on_retry=state.retries.labels(pair.name).inc)
        try:
            async for events in stream.noack_take(ws.batch_max, within=ws.batch_within):
                messages = [_raw(e.message) for e in events]
                try:
                    outcome = await replicator.process(messages)
                except FatalApplyError as exc:
                    log.critical("cannot apply: %s. Exiting without acknowledging the batch.", exc)
                    logging.shutdown()
                    os._exit(EXIT_UNAPPLIABLE)
                for event in events:
                    await stream.ack(event)
                last = {}
                for m in messages:
                    last[(m.topic, m.partition)] = max(m.offset, last.get((m.topic, m.partition), -1))
                state.record(outcome, last)
        finally:
            await sink.close()

    @app.page("/healthz")
    async def healthz(web, request):
        assigned = {(tp.topic, tp.partition) for tp in app.consumer.assignment()} if app.consumer else set()
        highwaters, positions = {}, {}
        for tp in app.consumer.assignment() if app.consumer else ():
            try:
                high = app.consumer.highwater(tp)
                position = await app.consumer.position(tp)
            except Exception:  # noqa: BLE001 - unknown before the first fetch
                continue
            if high is not None:  # None until the first fetch
                highwaters[(tp.topic, tp.partition)] = high
            if position is not None:
                positions[(tp.topic, tp.partition)] = position
        health = state.evaluate(assigned, highwaters, positions)
        return web.json({"healthy": health.healthy, "reason": health.reason, **health.details},
                        status=200 if health.healthy else 503)

    @app.page("/metrics")
    async def metrics(web, request):
        return web.bytes(generate_latest(state.registry), content_type="text/plain; version=0.0.4")

    app.cdc_state = state  # type: ignore[attr-defined]
    return app
