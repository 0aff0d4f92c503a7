"""The read models' changelog topics, created at deploy like every other topic (the broker does
not auto-create and the workers may not): compacted and kept forever, as many partitions as the
sources, since Faust writes a table key to the partition of the message that changed it."""
from __future__ import annotations

from connectors.topics import ensure_topics
from services.registry import current
from stack.kafka_client import KafkaAccess

# compacted, never deleted by age or size; "delete" too only so that a rebuild may empty them
# (Kafka refuses DeleteRecords on a topic that is only compacted)
CHANGELOG_CONFIG = {"cleanup.policy": "compact,delete", "retention.ms": "-1", "retention.bytes": "-1"}


def ensure_changelogs(kafka: KafkaAccess) -> list[str]:
    created: list[str] = []
    for model in current().read_models:
        created += ensure_topics(kafka, model.changelog_topics, partitions=model.partitions, config=CHANGELOG_CONFIG)
    return created
