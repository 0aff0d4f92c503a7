"""Rebuilding a read model by replay: with its worker stopped, move its consumer group to the
start of its sources, empty its changelog topics (the tables start empty), wipe its tables in the
database; the worker, started again, folds everything from offset 0.

A source whose history no longer starts at offset 0 (retention deleted some) is refilled instead,
when the model names its table (`TableBackfill`): the group starts that topic at its current end
E, the rebuild cuts the table at its largest key S (after every transaction in flight then has
ended), and asks Debezium for a blocking snapshot of the rows up to S (an incremental one keeps
one row per message key of each chunk, and a read model's source is keyed by what it groups by). Every row up to S was
committed before the snapshot began, so it arrives once as a read; a row above S arrives as an
insert after E. The cut (streams/read_models/cuts.py) counts each row once. A source without a
backfill whose start is gone refuses the rebuild: it would come up short."""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping

import psycopg
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from psycopg import sql

from schemas.envelope import ChangeEvent, MalformedEvent, parse_change
from services.registry import current
from stack.kafka_client import KafkaAccess
from streams.backfill import signal_snapshot
from streams.read_models import cuts
from streams.read_models.cuts import Cut
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


def plan(kafka: KafkaAccess, model: ReadModel, backfill_all: bool = False) -> list[str]:
    """The sources to refill from their tables: those whose start retention deleted (or every
    one that can be, with `backfill_all`). Refused if a source that cannot be refilled lost its start."""
    lost: dict[str, dict[int, int]] = {}
    for (t, p), (low, _) in _watermarks(kafka, list(model.sources)).items():
        if low > 0:
            lost.setdefault(t, {})[p] = low
    if short := {t: parts for t, parts in lost.items() if t not in model.backfills}:
        raise RebuildRefused(f"{', '.join(sorted(short))} no longer start at offset 0 (first offsets {short}) and "
                             f"{model.name} names no table to refill them from: a replay would miss what retention "
                             "deleted")
    return [t for t in model.sources if t in model.backfills and (backfill_all or t in lost)]


def cut_source(env: Mapping[str, str], model: ReadModel, topic: str, timeout: float = 120.0) -> Cut:
    """The table's largest key now, once every transaction that was in flight has ended (a row with
    a smaller key may still commit until then), and how many rows it has up to that key."""
    backfill = model.backfills[topic]
    spec = current().service(backfill.service)
    table, key = sql.Identifier(backfill.table), sql.Identifier(backfill.key)
    with psycopg.connect(env[f"{spec.env_prefix}_DEBEZIUM_URL"], connect_timeout=5, autocommit=True) as conn:
        row = conn.execute(sql.SQL("SELECT coalesce(max({}), 0) FROM {}").format(key, table)).fetchone()
        xip = conn.execute("SELECT array_agg(x::text) FROM pg_snapshot_xip(pg_current_snapshot()) x").fetchone()
        assert row is not None and xip is not None
        top, in_flight = int(row[0]), [int(x) for x in xip[0] or []]
        deadline = time.monotonic() + timeout
        while in_flight:
            left = conn.execute("SELECT array_agg(x::text) FROM unnest(%s::text[]::xid8[]) x "
                                "WHERE pg_xact_status(x) = 'in progress'", ([str(x) for x in in_flight],)).fetchone()
            in_flight = [int(x) for x in (left[0] if left and left[0] else [])]
            if in_flight and time.monotonic() > deadline:
                raise RebuildRefused(f"transactions {in_flight} on {backfill.service} still open after {timeout:.0f}s: "
                                     f"cannot cut {backfill.table} while rows below its largest key may still commit")
            if in_flight:
                time.sleep(0.2)
        counted = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {} <= %s").format(table, key), (top,)).fetchone()
    return Cut(topic, backfill.key, top, int(counted[0]) if counted else 0)


def request_backfill(env: Mapping[str, str], model: ReadModel, cut: Cut) -> str:
    backfill = model.backfills[cut.topic]
    return signal_snapshot(dict(env), backfill.service, backfill.table, f"rebuild-{model.name}",
                           # a blocking snapshot's condition is its whole statement, not a WHERE clause
                           f'SELECT * FROM public."{backfill.table}" WHERE "{backfill.key}" <= {cut.cut}', kind="blocking")


def snapshot_arrived(kafka: KafkaAccess, cut: Cut, starts: Mapping[TP, int], timeout: float,
                     progress: Callable[[int], None] = lambda n: None) -> dict[TP, int]:
    """Read the topic from `starts` until the snapshot's reads of every row up to the cut are in it;
    returns the offsets just past the last of them (the group must commit that far)."""
    consumer = Consumer(kafka.config(**{"group.id": "cdc-readmodel-probe", "enable.auto.commit": False,
                                        "auto.offset.reset": "earliest"}))
    seen: set[int] = set()
    past: dict[TP, int] = {}
    try:
        consumer.assign([TopicPartition(t, p, o) for (t, p), o in starts.items() if t == cut.topic])
        deadline = time.monotonic() + timeout
        while len(seen) < cut.rows:
            if time.monotonic() > deadline:
                raise RebuildRefused(f"the snapshot of {cut.topic} brought {len(seen):,} of {cut.rows:,} rows "
                                     f"within {timeout:.0f}s (is its connector RUNNING?)")
            for msg in consumer.consume(500, timeout=1.0):
                if msg.error():
                    continue
                try:
                    change = parse_change(msg.key(), msg.value())
                except MalformedEvent:
                    continue
                key = change.row.get(cut.key_column) if isinstance(change, ChangeEvent) and change.op == "r" else None
                if isinstance(key, int) and key <= cut.cut:
                    seen.add(key)
                    past[(str(msg.topic()), int(msg.partition() or 0))] = int(msg.offset() or 0) + 1
            progress(len(seen))
        return past
    finally:
        consumer.close()


def reset_offsets(kafka: KafkaAccess, model: ReadModel, timeout: float = 60.0,
                  starts: Mapping[TP, int] | None = None) -> None:
    """Move the group to offset 0 of every source partition, or to `starts` where given (the
    group must have no member)."""
    tps = [TopicPartition(t, p, (starts or {}).get((t, p), 0)) for (t, p) in _watermarks(kafka, list(model.sources))]
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


def wipe(dsn: str, model: ReadModel, new_cuts: list[Cut] | None = None) -> None:
    """Empty the model's tables and set its cuts (none for a rebuild from offset 0), in one transaction."""
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(sql.Identifier(t) for t in model.store.tables)))
        cuts.replace(conn, model.name, new_cuts or [])


def end_offsets(kafka: KafkaAccess, model: ReadModel, topics: list[str] | None = None) -> dict[TP, int]:
    return {tp: high for tp, (_, high) in _watermarks(kafka, topics or list(model.sources)).items()}


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
    """Per table of the read model: rows and an md5 of every row (sorted) but its source position
    (bookkeeping: a backfill brings the same figures at other offsets): equal digests, equal figures."""
    found = {}
    with psycopg.connect(dsn) as conn:
        for table in model.store.tables:
            rows = conn.execute(sql.SQL("SELECT (to_jsonb(t) - 'source_offset')::text FROM {} t")
                                .format(sql.Identifier(table))).fetchall()
            text = "\n".join(sorted(r[0] for r in rows))
            found[table] = (len(rows), hashlib.md5(text.encode()).hexdigest())
    return found
