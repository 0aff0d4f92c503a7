"""Rebuilding a read model by replay: with its worker stopped, move its consumer group to the
start of its sources, empty its changelog topics (the tables start empty), wipe its tables in the
database; the worker, started again, folds everything from offset 0. Refused when a source's
history no longer starts at offset 0 (retention deleted some): the rebuild would come up short."""
from __future__ import annotations

import hashlib
import time

import psycopg
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from psycopg import sql

from stack.kafka_client import KafkaAccess
from streams.read_models.plugin import ReadModel

TP = tuple[str, int]


class RebuildRefused(RuntimeError):
    pass


def _watermarks(kafka: KafkaAccess, topics: list[str]) -> dict[TP, tuple[int, int]]:
    consumer = Consumer(kafka.config(**{"group.id": "cdc-readmodel-probe", "enable.auto.commit": False}))
    try:
        meta = consumer.list_topics(timeout=10)
        return {(t, p): consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)
                for t in topics for p in meta.topics[t].partitions}
    finally:
        consumer.close()


def check_history(kafka: KafkaAccess, model: ReadModel) -> None:
    lost = {f"{t}:{p}": low for (t, p), (low, _) in _watermarks(kafka, list(model.sources)).items() if low > 0}
    if lost:
        raise RebuildRefused(f"the sources no longer start at offset 0 ({lost}): replay would miss what retention "
                             "deleted; refill the source topics first (an incremental snapshot), then rebuild")


def reset_offsets(kafka: KafkaAccess, model: ReadModel, timeout: float = 60.0) -> None:
    """Move the group to offset 0 of every source partition (the group must have no member)."""
    tps = [TopicPartition(t, p, 0) for (t, p) in _watermarks(kafka, list(model.sources))]
    admin = AdminClient(kafka.config())
    deadline = time.monotonic() + timeout
    while True:
        try:
            for fut in admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(model.group_id, tps)]).values():
                fut.result(timeout=10)
            return
        except Exception as exc:  # noqa: BLE001 - a stopped worker's membership lasts until its session ends
            if time.monotonic() > deadline:
                raise RebuildRefused(f"cannot move {model.group_id} to offset 0 within {timeout:.0f}s (is a worker "
                                     f"of it still running?): {exc}") from None
            time.sleep(1.0)


def empty_changelogs(kafka: KafkaAccess, model: ReadModel) -> None:
    """Delete every record of the tables' changelogs: a worker starting now recovers empty tables."""
    marks = _watermarks(kafka, model.changelog_topics)
    tps = [TopicPartition(t, p, high) for (t, p), (_, high) in marks.items() if high > 0]
    if tps:
        admin = AdminClient(kafka.config())   # held until the futures resolve (they never do once it is garbage)
        for fut in admin.delete_records(tps, request_timeout=30).values():
            fut.result(timeout=60)


def wipe(dsn: str, model: ReadModel) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(sql.Identifier(t) for t in model.store.tables)))


def end_offsets(kafka: KafkaAccess, model: ReadModel) -> dict[TP, int]:
    return {tp: high for tp, (_, high) in _watermarks(kafka, list(model.sources)).items()}


def behind(kafka: KafkaAccess, model: ReadModel, ends: dict[TP, int]) -> int:
    """Messages of `ends` the group has not committed yet (its commits follow the database's)."""
    consumer = Consumer(kafka.config(**{"group.id": model.group_id, "enable.auto.commit": False}))
    try:
        committed = consumer.committed([TopicPartition(t, p) for t, p in ends], timeout=10)
        at = {(c.topic, c.partition): max(c.offset, 0) for c in committed}
        return sum(max(0, end - at.get(tp, 0)) for tp, end in ends.items())
    finally:
        consumer.close()


def digest(dsn: str, model: ReadModel) -> dict[str, tuple[int, str]]:
    """Per table of the read model: rows and an md5 of every row (sorted): equal digests, equal figures."""
    found = {}
    with psycopg.connect(dsn) as conn:
        for table in model.store.tables:
            rows = conn.execute(sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(table))).fetchall()
            text = "\n".join(sorted(r[0] for r in rows))
            found[table] = (len(rows), hashlib.md5(text.encode()).hexdigest())
    return found
