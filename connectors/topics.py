"""Creates the connectors' topics before deploy, with a fixed partition count: the broker
does not auto-create topics, so an early consumer cannot make a one-partition topic."""
from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from stack.kafka_client import KafkaAccess

DEFAULT_PARTITIONS = 3


def admin(kafka: KafkaAccess) -> AdminClient:
    return AdminClient(kafka.config())


def ensure_topics(kafka: KafkaAccess, topics: list[str], partitions: int = DEFAULT_PARTITIONS,
                  config: dict[str, str] | None = None) -> list[str]:
    """Create the missing topics; returns the names created. Existing topics are left as they are."""
    client = admin(kafka)
    existing = set(client.list_topics(timeout=15).topics)
    missing = [t for t in dict.fromkeys(topics) if t not in existing]
    if not missing:
        return []
    futures = client.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=1, config=config or {})
                                   for t in missing],
                                   operation_timeout=30)
    for fut in futures.values():
        try:
            fut.result()
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    return missing
