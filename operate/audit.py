"""Every re-drive and discard is recorded on the broker (who, when, what, why): the record is the
operator's history, and it tells later readers which dead letters are already handled."""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass

from confluent_kafka import Consumer, Producer, TopicPartition

from connectors.topics import ensure_topics
from operate.letters import READ_GROUP, Letter
from stack.kafka_client import KafkaAccess

AUDIT_TOPIC = "cdc.operator.audit"


@dataclass(frozen=True)
class Action:
    action: str            # "redrive" or "discard"
    letter: str            # Letter.id: dlq topic:partition:offset
    reason: str            # why the worker dead-lettered it
    origin: str            # topic:partition:offset it came from
    target: str            # where a re-drive sent it ("" for a discard)
    who: str
    why: str
    at: float              # epoch seconds

    @classmethod
    def of(cls, action: str, letter: Letter, who: str, why: str, target: str = "") -> Action:
        return cls(action, letter.id, letter.reason,
                   f"{letter.origin_topic}:{letter.origin_partition}:{letter.origin_offset}", target, who, why,
                   time.time())


def record(kafka: KafkaAccess, actions: list[Action]) -> None:
    """Returns when every record is durably on the broker."""
    if not actions:
        return
    ensure_topics(kafka, [AUDIT_TOPIC], partitions=1)
    producer = Producer(kafka.config(**{"enable.idempotence": True}))
    errors: list[str] = []
    for a in actions:
        producer.produce(AUDIT_TOPIC, key=a.letter.encode(), value=json.dumps(asdict(a)).encode(),
                         on_delivery=lambda err, _m: errors.append(str(err)) if err else None)
    if producer.flush(30) or errors:
        raise RuntimeError(f"audit records not delivered: {errors[:3]}")


def history(kafka: KafkaAccess, timeout: float = 30.0) -> list[Action]:
    consumer = Consumer(kafka.config(**{"group.id": READ_GROUP, "enable.auto.commit": False}))
    try:
        meta = consumer.list_topics(AUDIT_TOPIC, timeout=15).topics.get(AUDIT_TOPIC)
        if meta is None or meta.error is not None:
            return []
        low, high = consumer.get_watermark_offsets(TopicPartition(AUDIT_TOPIC, 0), timeout=15)
        if high <= low:
            return []
        consumer.assign([TopicPartition(AUDIT_TOPIC, 0, low)])
        actions: list[Action] = []
        position, deadline = low, time.monotonic() + timeout
        while position < high:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {AUDIT_TOPIC} to offset {high} within {timeout:.0f}s")
            msg = consumer.poll(0.5)
            if msg is None or msg.error() or msg.offset() is None:
                continue
            position = (msg.offset() or 0) + 1
            actions.append(Action(**json.loads(msg.value() or b"{}")))
        return actions
    finally:
        consumer.close()


def handled(actions: list[Action]) -> dict[str, Action]:
    """Letter id -> the action that handled it (the first one)."""
    out: dict[str, Action] = {}
    for a in actions:
        out.setdefault(a.letter, a)
    return out


def counts(actions: list[Action]) -> Counter[str]:
    return Counter(a.action for a in actions)
