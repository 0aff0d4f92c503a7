"""Dead-letter topic: a message that cannot be applied is kept, untouched, with where it came
from and why, and the worker goes on. Delivery is awaited before the batch is acknowledged."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from confluent_kafka import KafkaException, Producer

from stack.kafka_client import KafkaAccess


@dataclass(frozen=True)
class RawMessage:
    """A consumed Kafka message, free of the consumer library (so the core is testable)."""
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp: float | None = None   # the broker's record time, epoch seconds


@dataclass(frozen=True)
class DeadLetter:
    message: RawMessage
    reason: str


def dlq_headers(letter: DeadLetter, pair: str) -> list[tuple[str, str | bytes | None]]:
    m = letter.message
    own: list[tuple[str, str | bytes | None]] = [("dlq.reason", letter.reason.encode()), ("dlq.topic", m.topic.encode()),
           ("dlq.partition", str(m.partition).encode()), ("dlq.offset", str(m.offset).encode()),
           ("dlq.pair", pair.encode())]
    return own + [(k, v) for k, v in m.headers if v is not None and not k.startswith("dlq.")]


class DeadLetterPublisher:
    def __init__(self, kafka: KafkaAccess, topic: str, pair: str) -> None:
        self.topic = topic
        self.pair = pair
        # murmur2 like Java clients and aiokafka, so keys land where Faust expects them
        self.producer = Producer(kafka.config(**{"partitioner": "murmur2_random", "enable.idempotence": True,
                                                 "linger.ms": 5}))

    async def publish(self, letters: list[DeadLetter]) -> None:
        """Returns only when every letter is durably in the topic; raises if one failed."""
        if letters:
            await asyncio.to_thread(self._publish_sync, letters)

    def _publish_sync(self, letters: list[DeadLetter]) -> None:
        errors: list[str] = []

        def delivered(err, _msg) -> None:
            if err is not None:
                errors.append(str(err))

        for letter in letters:
            self.producer.produce(self.topic, key=letter.message.key, value=letter.message.value,
                                  headers=dlq_headers(letter, self.pair), on_delivery=delivered)
        remaining = self.producer.flush(30)
        if remaining or errors:
            raise KafkaException(f"dead-letter delivery failed ({remaining} pending): {errors[:3]}")
