"""Acknowledgement read directly: a consumer group's committed offsets, read with a plain client
that never joins the group, and what they must not run ahead of. A worker that acknowledged a
batch before its transaction committed (and retried it in memory) would converge all the same;
only its committed offsets give it away."""
from __future__ import annotations

import threading
import time

import psycopg
from confluent_kafka import Consumer, TopicPartition

from cdc_testing.events import TopicReader
from schemas.envelope import ChangeEvent, MalformedEvent, parse_change
from stack.kafka_client import KafkaAccess
from streams.projection import project
from streams.spec import ReplicationPair


def _client(kafka: KafkaAccess, group: str) -> Consumer:
    return Consumer(kafka.config(**{"group.id": group, "enable.auto.commit": False}))


def _partitions(client: Consumer, topic: str) -> list[int]:
    meta = client.list_topics(topic, timeout=10)
    assert topic in meta.topics and meta.topics[topic].partitions, f"topic {topic} has no partitions"
    return sorted(meta.topics[topic].partitions)


def committed(kafka: KafkaAccess, group: str, topic: str) -> dict[int, int]:
    """partition -> the group's committed offset (-1: none yet)."""
    client = _client(kafka, group)
    try:
        tps = [TopicPartition(topic, p) for p in _partitions(client, topic)]
        return {tp.partition: tp.offset for tp in client.committed(tps, timeout=10)}
    finally:
        client.close()


def end_offsets(kafka: KafkaAccess, topic: str) -> dict[int, int]:
    """partition -> the offset the next message will get."""
    client = _client(kafka, "tests-unused")
    try:
        return {p: client.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in _partitions(client, topic)}
    finally:
        client.close()


class CommittedWatch:
    """Samples a group's committed offsets on a topic in a thread, keeping the highest seen per
    partition: a commit that came and went between two looks at the end is still caught."""

    def __init__(self, kafka: KafkaAccess, group: str, topic: str, interval: float = 0.2) -> None:
        self.kafka, self.group, self.topic, self.interval = kafka, group, topic, interval
        self.highest: dict[int, int] = {}
        self.samples = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> CommittedWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        client = _client(self.kafka, self.group)
        try:
            tps = [TopicPartition(self.topic, p) for p in _partitions(client, self.topic)]
            while not self._stop.is_set():
                for tp in client.committed(tps, timeout=10):
                    self.highest[tp.partition] = max(tp.offset, self.highest.get(tp.partition, -1))
                self.samples += 1
                self._stop.wait(self.interval)
        except BaseException as exc:  # noqa: BLE001 - reported by stop(): a dead sampler proves nothing
            self.errors.append(exc)
        finally:
            client.close()

    def wait_samples(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        start = self.samples
        while self.samples < start + count:
            assert not self.errors, f"the offset sampler failed: {self.errors}"
            assert time.monotonic() < deadline, f"the offset sampler took fewer than {count} samples in {timeout:.0f}s"
            time.sleep(self.interval)

    def stop(self) -> dict[int, int]:
        self._stop.set()
        self._thread.join(30)
        assert not self.errors, f"the offset sampler failed: {self.errors}"
        assert self.samples > 0, "the offset sampler took no sample"
        return dict(self.highest)


def acknowledged_but_not_applied(kafka: KafkaAccess, env: dict[str, str], pair: ReplicationPair,
                                 since: dict[int, int], acked: dict[int, int]) -> list[str]:
    """Every change on the pair's topic from `since` up to the group's committed offsets `acked`
    whose effect the replica does not hold (its stored commit order is older, or the row is
    missing). Must be empty whenever nobody is applying: acknowledged means durable."""
    start = {(pair.source_topic, p): since.get(p, 0) for p in acked}
    reader = TopicReader(kafka, [pair.source_topic], start=start)
    try:
        deadline = time.monotonic() + 60
        while any(reader._position((pair.source_topic, p)) < off for p, off in acked.items()):
            assert time.monotonic() < deadline, f"could not read {pair.source_topic} up to {acked}"
            msg = reader.consumer.poll(0.5)
            if msg is not None and not msg.error():
                reader.seen.append(msg)
        messages = [m for m in reader.seen if m.offset() < acked.get(m.partition(), 0)]
    finally:
        reader.close()
    newest: dict[tuple, tuple[tuple[int, int], str]] = {}
    for m in messages:
        try:
            event = parse_change(m.key(), m.value())
        except MalformedEvent:
            continue  # dead-lettered, not applied
        if not isinstance(event, ChangeEvent):
            continue
        row = project(pair, event)
        if row.key not in newest or row.order_key >= newest[row.key][0]:
            newest[row.key] = (row.order_key, f"{m.partition()}:{m.offset()}")
    key_cols = ", ".join(pair.key.values())
    url = env[f"{pair.target.service.upper()}_OBSERVER_URL"]
    with psycopg.connect(url) as conn:
        stored = {tuple(r[:-2]): (r[-2], r[-1]) for r in conn.execute(
            f"SELECT {key_cols}, cdc_commit_lsn, cdc_position FROM {pair.replica_table}").fetchall()}
    return [f"key {key} at {where}: replica holds {stored.get(key)}, the change is {order}"
            for key, (order, where) in newest.items() if stored.get(key) is None or stored[key] < order]
