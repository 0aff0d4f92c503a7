"""The read models' changelog topics, created at deploy like every other topic (the broker does
not auto-create and the workers may not): compacted, as many partitions as the sources, since
Faust writes a table key to the partition of the message that changed it."""
from __future__ import annotations

from connectors.topics import ensure_topics
from services.registry import current
from stack.kafka_client import KafkaAccess

CHANGELOG_CONFIG = {"cleanup.policy": "compact"}


def ensure_changelogs(kafka: KafkaAccess) -> list[str]:
    created: list[str] = []
    for model in current().read_models:
        created += ensure_topics(kafka, model.changelog_topics, partitions=model.partitions, config=CHANGELOG_CONFIG)
    return created
