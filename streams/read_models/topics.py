"""The read models' changelog topics, created at deploy like every other topic (the broker does
not auto-create and the workers may not): compacted and kept forever, as many partitions as the
sources, since Faust writes a table key to the partition of the message that changed it. A
source that cannot be refilled from its table (no backfill: an outbox's events) is set to keep its
messages forever, so that a rebuild can always replay it."""
from __future__ import annotations

from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from connectors.topics import admin, ensure_topics
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


KEPT_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}


def keep_unrefillable_sources(kafka: KafkaAccess) -> list[str]:
    """retention.ms=-1 on every read model source without a backfill (the topics exist by now)."""
    client = admin(kafka)
    existing = set(client.list_topics(timeout=15).topics)   # a partial deploy may not have made them all
    topics = sorted({t for model in current().read_models for t in model.kept_forever} & existing)
    if not topics:
        return []
    resources = [ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in KEPT_FOREVER.items()])
        for t in topics]
    for fut in client.incremental_alter_configs(resources).values():
        fut.result(timeout=30)
    return topics
