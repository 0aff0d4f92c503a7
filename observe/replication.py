"""Is a replication pair converged? Source rows vs replica rows, a checksum of the replicated
columns on both sides, lag in positions, messages and seconds. Read through the read-only
observer role of each database.

Converged means: the connector has confirmed a source position at or past the WAL position
taken when the check began, the pair's consumer group has no lag, and the checksums match."""
from __future__ import annotations

from dataclasses import dataclass

import psycopg
from confluent_kafka import Consumer, TopicPartition
from psycopg import sql

from services.registry import current
from stack.kafka_client import OBSERVER, KafkaAccess, access
from streams.spec import ReplicationPair


def _projection(columns: list[str], table: str, where: str = "") -> sql.Composed:
    """count and md5 over the rows in key order; NULL spelled out so '' and NULL differ."""
    fields = sql.SQL(", ").join(sql.SQL("coalesce({}::text, '<null>')").format(sql.Identifier(c)) for c in columns)
    order = sql.Identifier(columns[0])
    return sql.SQL("SELECT count(*), md5(coalesce(string_agg(concat_ws('|', {f}), E'\\n' ORDER BY {o}), '')) "
                   "FROM {t} {w}").format(f=fields, o=order, t=sql.Identifier(table), w=sql.SQL(where))


def _one(conn: psycopg.Connection, query, params=None) -> tuple:
    """The single row an aggregate query returns."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, f"no row from {query!r}"
    return row


def pg_lsn(value: str | None) -> int | None:
    if value is None:
        return None
    hi, lo = value.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


@dataclass
class PairReport:
    pair: str
    source_rows: int
    replica_rows: int
    source_checksum: str
    replica_checksum: str
    start_lsn: int               # source WAL position when the check began
    confirmed_lsn: int | None    # what the connector has confirmed to the source
    applied_lsn: int | None      # newest source position applied to the replica
    consumer_lag: int            # messages of the source topic not yet committed by the pair's group
    lag_seconds: float | None

    @property
    def checksums_match(self) -> bool:
        return self.source_rows == self.replica_rows and self.source_checksum == self.replica_checksum

    @property
    def captured(self) -> bool:
        return self.confirmed_lsn is not None and self.confirmed_lsn >= self.start_lsn

    @property
    def converged(self) -> bool:
        return self.captured and self.consumer_lag == 0 and self.checksums_match


def consumer_lag(kafka: KafkaAccess, group: str, topic: str) -> int:
    """Messages of `topic` the group has not committed yet (reads the group's offsets, never joins it)."""
    consumer = Consumer(kafka.config(**{"group.id": group, "enable.auto.commit": False}))
    try:
        meta = consumer.list_topics(topic, timeout=10)
        parts = [TopicPartition(topic, p) for p in meta.topics[topic].partitions]
        committed = consumer.committed(parts, timeout=10)
        lag = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
            position = tp.offset if tp.offset >= 0 else low
            lag += max(0, high - position)
        return lag
    finally:
        consumer.close()


def source_wal_lsn(pair: ReplicationPair, env: dict[str, str]) -> int:
    source = current().service(pair.source.service)
    with psycopg.connect(env[f"{source.env_prefix}_OBSERVER_URL"], connect_timeout=5) as conn:
        return pg_lsn(_one(conn, "SELECT pg_current_wal_lsn()::text")[0]) or 0


def wait_converged(pairs: list[ReplicationPair], env: dict[str, str], timeout: float,
                   on_report=None, interval: float = 1.0) -> list[PairReport]:
    """Check until every pair has converged against the WAL positions taken at the start."""
    import time

    starts = {p.name: source_wal_lsn(p, env) for p in pairs}
    deadline = time.monotonic() + timeout
    while True:
        reports = [check_pair(p, env, starts[p.name]) for p in pairs]
        if on_report is not None:
            on_report(reports)
        if all(r.converged for r in reports) or time.monotonic() > deadline:
            return reports
        time.sleep(interval)


def check_pair(pair: ReplicationPair, env: dict[str, str], start_lsn: int | None = None) -> PairReport:
    """`start_lsn`: the source WAL position when observation began (taken now if not given)."""
    source = current().service(pair.source.service)
    src_cols = [*pair.key, *pair.columns]
    dst_cols = [*pair.key.values(), *pair.columns.values()]
    with psycopg.connect(env[f"{source.env_prefix}_OBSERVER_URL"], connect_timeout=5) as conn:
        if start_lsn is None:
            start_lsn = pg_lsn(_one(conn, "SELECT pg_current_wal_lsn()::text")[0]) or 0
        src_rows, src_sum = _one(conn, _projection(src_cols, pair.source.table))
        confirmed = conn.execute("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
                                 (source.slot,)).fetchone()
        src_last_commit = _one(conn, sql.SQL("SELECT extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) FROM {}")
                               .format(sql.Identifier(pair.source.table)))[0]
    target = current().service(pair.target.service)
    with psycopg.connect(env[f"{target.env_prefix}_OBSERVER_URL"], connect_timeout=5) as conn:
        dst_rows, dst_sum = _one(conn, _projection(dst_cols, pair.replica_table, "WHERE NOT cdc_deleted"))
        applied, dst_last = _one(conn, sql.SQL(
            "SELECT max(cdc_position), extract(epoch FROM max(cdc_source_ts)) FROM {}").format(
                sql.Identifier(pair.replica_table)))
    lag = consumer_lag(access(env, OBSERVER), pair.group_id, pair.source_topic)
    lag_seconds = None
    if src_last_commit is not None:
        lag_seconds = max(0.0, float(src_last_commit) - float(dst_last or 0)) if lag else 0.0
    return PairReport(pair.name, src_rows, dst_rows, src_sum, dst_sum, start_lsn,
                      pg_lsn(confirmed[0]) if confirmed else None, applied, lag, lag_seconds)
