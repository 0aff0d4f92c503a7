"""Reads topics from their current end (or from given offsets) without a consumer group, so
tests see only what happens after they start and leave no committed state behind."""
from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, Message, TopicPartition

from stack.kafka_client import KafkaAccess


def committed_offset(kafka: KafkaAccess, group: str, tp: TopicPartition) -> int:
    """The group's committed offset on one partition (negative when none)."""
    consumer = Consumer(kafka.config(**{"group.id": group}))
    try:
        return consumer.committed([tp], timeout=10)[0].offset
    finally:
        consumer.close()


class TopicReader:
    def __init__(self, kafka: KafkaAccess, topics: list[str], start: dict[tuple[str, int], int] | None = None) -> None:
        self.consumer = Consumer(kafka.config(**{"group.id": "tests-unused",
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest"}))
        self.topics = topics
        self.start = start if start is not None else self.end_offsets()
        self.consumer.assign([TopicPartition(t, p, o) for (t, p), o in self.start.items()])
        self.seen: list[Message] = []

    def end_offsets(self) -> dict[tuple[str, int], int]:
        offsets: dict[tuple[str, int], int] = {}
        meta = self.consumer.list_topics(timeout=10)
        for topic in self.topics:
            assert topic in meta.topics, f"topic {topic} does not exist (was `make deploy` run?)"
            for p in meta.topics[topic].partitions:
                _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                offsets[(topic, p)] = high
        return offsets

    def wait_for(self, match: Callable[[Message], bool], count: int, timeout: float, expected: str) -> list[Message]:
        """Poll until `count` messages matching `match` have arrived; fail with what was seen."""
        deadline = time.monotonic() + timeout
        while True:
            hits = [m for m in self.seen if match(m)]
            if len(hits) >= count:
                return hits
            if time.monotonic() > deadline:
                shown = [(m.topic(), m.key(), (m.value() or b"")[:120]) for m in self.seen[-10:]]
                raise AssertionError(f"after {timeout:.0f}s expected {expected} ({count} messages); "
                                     f"matched {len(hits)}; last messages seen: {shown}")
            msg = self.consumer.poll(0.5)
            if msg is not None and not msg.error():
                self.seen.append(msg)

    def read_to_end(self, timeout: float = 30.0) -> list[Message]:
        """Read every message up to the partitions' current end offsets (proves an absence
        without waiting for a quiet period)."""
        target = self.end_offsets()
        deadline = time.monotonic() + timeout
        while True:
            done = all(self._position(tp) >= high for tp, high in target.items())
            if done:
                return self.seen
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read to the end offsets {target} within {timeout:.0f}s")
            msg = self.consumer.poll(0.5)
            if msg is not None and not msg.error():
                self.seen.append(msg)

    def _position(self, tp: tuple[str, int]) -> int:
        seen = [o for m in self.seen if (m.topic(), m.partition()) == tp and (o := m.offset()) is not None]
        return max(seen) + 1 if seen else self.start.get(tp, 0)

    def close(self) -> None:
        self.consumer.close()
