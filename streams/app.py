"""The Faust app of one replication pair: its own consumer group, one actor per partition
(ordered within it), batches acknowledged only after their transaction committed."""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

import faust
from prometheus_client import generate_latest

from schemas.envelope import MalformedEvent
from stack.kafka_client import KafkaAccess
from streams.deadletter import DeadLetterPublisher, RawMessage
from streams.durable import EXIT_UNAPPLIABLE, Database, run_durably
from streams.faust_app import new_app
from streams.health import WorkerState
from streams.liveness import Liveness, install_watchdog
from streams.purge import MarkerPurge, purges_markers
from streams.replicator import FatalApplyError, PairReplicator
from streams.sink import ReplicaSink
from streams.spec import ReplicationPair
from streams.topic_retention import redelivery_keep_seconds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    kafka: KafkaAccess  # the pair's own principal (connectors/acls.py says what it may do)
    target_dsn: str
    web_port: int = 6066
    batch_max: int = 5000
    batch_within: float = 0.05
    session_timeout: float = 30.0   # tests shorten it so takeovers are quick
    rebalance_timeout: float = 30.0
    stall_after: float = 30.0       # /healthz says unhealthy after this long behind without progress
    stall_restart: float = 60.0     # the watchdog restarts the process in place after this long (streams/liveness.py)
    purge_every: float = 300.0      # seconds between purges of expired delete markers
    direct_drain: bool = True       # False: Faust's own per-message drain (the bench's before side)


def _raw(message) -> RawMessage:
    return RawMessage(message.topic, message.partition, message.offset, message.key, message.value,
                      tuple(message.headers or ()))


def create_app(pair: ReplicationPair, ws: WorkerSettings) -> faust.App:
    app = new_app(pair.group_id, ws.kafka, ws.web_port, ws.session_timeout, ws.batch_max, ws.direct_drain)
    topic = app.topic(pair.source_topic, key_serializer="raw", value_serializer="raw", allow_empty=True)
    state = WorkerState(pair.name, stall_after=ws.stall_after)
    dead_letters = DeadLetterPublisher(ws.kafka, pair.dead_letter_topic, pair.name)
    liveness = Liveness(ws.stall_restart)  # the same watchdog as the saga workers': a stuck consumer restarts

    @app.agent(topic, name=f"replicate-{pair.name}", isolated_partitions=True)
    async def replicate(stream):  # one call per assigned partition
        sink = ReplicaSink(pair, ws.target_dsn)
        replicator = PairReplicator(pair, sink, dead_letters, on_retry=state.retries.labels(pair.name).inc,
                                    waiting=liveness.retrying)
        try:
            async for events in stream.noack_take(ws.batch_max, within=ws.batch_within):
                messages = [_raw(e.message) for e in events]
                firsts: dict[tuple[str, int], int] = {}
                for m in messages:
                    firsts.setdefault((m.topic, m.partition), m.offset)
                state.fetched(firsts)
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
                liveness.acknowledged(last)
        finally:
            await sink.close()

    purge = install_purge(app, pair, ws, state)
    install_watchdog(app, liveness, ws.kafka)

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
        return web.json({"healthy": health.healthy, "reason": health.reason, **health.details,
                         "purge": purge.stats() if purge else {"disabled": f"{pair.delete_policy}: deleted rows are kept"}},
                        status=200 if health.healthy else 503)

    @app.page("/metrics")
    async def metrics(web, request):
        return web.bytes(generate_latest(state.registry), content_type="text/plain; version=0.0.4")

    app.cdc_state = state  # type: ignore[attr-defined]
    return app


def install_purge(app: faust.App, pair: ReplicationPair, ws: WorkerSettings, state: WorkerState) -> MarkerPurge | None:
    """A timer that deletes the pair's expired delete markers (streams/purge.py), retried while
    the target database is down. The topic's retention is read at every run, so a changed
    retention counts from the next run; while it cannot be read, nothing is purged."""
    if not purges_markers(pair):
        return None
    purge = MarkerPurge(pair)
    db = Database(ws.target_dsn, f"{pair.group_id}-purge")

    @app.timer(interval=ws.purge_every, name=f"purge-{pair.name}")
    async def purge_markers() -> None:
        try:
            purge.keep_s = await asyncio.to_thread(redelivery_keep_seconds, ws.kafka, [pair.source_topic])
        except Exception as exc:  # noqa: BLE001 - try again next time; keep every marker meanwhile
            log.warning("purge: retention of %s unavailable (%s); markers kept", pair.source_topic, exc)
            return
        before = purge.markers_purged
        try:
            await run_durably(f"purge {pair.name}", db, purge.run)
        except MalformedEvent as exc:  # a data error in a DELETE: not worth stopping replication for
            log.error("purge of %s failed: %s", pair.replica_table, exc)
        state.purged.labels(pair.name).inc(purge.markers_purged - before)

    return purge
