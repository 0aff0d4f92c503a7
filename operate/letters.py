"""Dead letters as an operator sees them: read from every dead-letter topic (`dlq.*`), each with
its origin (topic, partition, offset), the worker that gave up on it, why, its headers and body.

Reading uses `assign()` from offset 0 and never commits, so looking leaves no trace on the
broker; the letters that were already re-driven or discarded are known from the audit topic."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from stack.kafka_client import KafkaAccess

DLQ_PREFIX = "dlq."
REDRIVES_HEADER = "cdc.redrives"   # how many times this message was re-driven (kept across dead-lettering)
READ_GROUP = "cdc-operator-read"   # never joined nor committed: librdkafka wants a group id


@dataclass(frozen=True)
class Letter:
    dlq_topic: str
    partition: int
    offset: int
    reason: str
    origin_topic: str
    origin_partition: int | None
    origin_offset: int | None
    worker: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]   # the original message's, without the dlq.* ones
    timestamp_ms: int | None = None
    redrives: int = 0

    @property
    def id(self) -> str:
        return f"{self.dlq_topic}:{self.partition}:{self.offset}"

    @property
    def group(self) -> str:
        return reason_group(self.reason)

    def body(self) -> object:
        """The value decoded for a person: JSON when it is JSON, else text, else its bytes' repr."""
        if self.value is None:
            return None
        try:
            return json.loads(self.value)
        except ValueError:
            try:
                return self.value.decode()
            except UnicodeDecodeError:
                return repr(self.value)


def reason_group(reason: str) -> str:
    """Letters that failed for the same cause share a group: numbers and quoted values blanked."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", reason)
    text = re.sub(r"\d+", "#", text)
    return text[:120]


def _header(headers: Iterable[tuple[str, bytes | None]], name: str) -> str | None:
    for k, v in headers:
        if k == name and v is not None:
            return v.decode(errors="replace")
    return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def byte_headers(headers: Any) -> list[tuple[str, bytes | None]]:
    """confluent-kafka's headers (pairs whose values are str, bytes or None) as bytes."""
    pairs = headers.items() if isinstance(headers, dict) else (headers or [])
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in pairs]


def letter_of(dlq_topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
              headers: Iterable[tuple[str, bytes | None]], timestamp_ms: int | None = None) -> Letter:
    headers = tuple(headers)
    return Letter(dlq_topic, partition, offset,
                  reason=_header(headers, "dlq.reason") or "(no reason recorded)",
                  origin_topic=_header(headers, "dlq.topic") or "",
                  origin_partition=_int(_header(headers, "dlq.partition")),
                  origin_offset=_int(_header(headers, "dlq.offset")),
                  worker=_header(headers, "dlq.pair") or "",
                  key=key, value=value,
                  headers=tuple((k, v) for k, v in headers if not k.startswith("dlq.")),
                  timestamp_ms=timestamp_ms,
                  redrives=_int(_header(headers, REDRIVES_HEADER)) or 0)


@dataclass
class TopicLetters:
    topic: str
    letters: list[Letter] = field(default_factory=list)


def dead_letter_topics(kafka: KafkaAccess) -> list[str]:
    consumer = Consumer(kafka.config(**{"group.id": READ_GROUP}))
    try:
        return sorted(t for t in consumer.list_topics(timeout=15).topics if t.startswith(DLQ_PREFIX))
    finally:
        consumer.close()


def read_topic(kafka: KafkaAccess, topic: str, timeout: float = 30.0) -> list[Letter]:
    """Every message of the topic, from its earliest kept offset to its end now."""
    import time

    consumer = Consumer(kafka.config(**{"group.id": READ_GROUP, "enable.auto.commit": False,
                                        "auto.offset.reset": "earliest"}))
    try:
        meta = consumer.list_topics(topic, timeout=15).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        ends: dict[int, int] = {}
        starts: list[TopicPartition] = []
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
            if high > low:
                ends[p] = high
                starts.append(TopicPartition(topic, p, low))
        if not starts:
            return []
        consumer.assign(starts)
        letters: list[Letter] = []
        position = {tp.partition: tp.offset for tp in starts}
        deadline = time.monotonic() + timeout
        while any(position[p] < ends[p] for p in ends):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end {ends} within {timeout:.0f}s "
                                   f"(reached {position})")
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            part, off = msg.partition(), msg.offset()
            if part is None or off is None:
                continue
            position[part] = off + 1
            if off < ends[part]:
                _, ts = msg.timestamp()
                letters.append(letter_of(topic, part, off, msg.key(), msg.value(), byte_headers(msg.headers()), ts))
        return sorted(letters, key=lambda x: (x.partition, x.offset))
    finally:
        consumer.close()


def group_by_reason(letters: Iterable[Letter]) -> dict[str, list[Letter]]:
    groups: dict[str, list[Letter]] = {}
    for letter in letters:
        groups.setdefault(letter.group, []).append(letter)
    return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))
