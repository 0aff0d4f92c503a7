"""How long a consumer must remember what it applied: as long as a topic can still redeliver a
message it read: Kafka deletes whole segments only once they are closed and their newest message
is older than retention.ms, so a message can outlive it by up to segment.ms (the active segment
rolls that long after its first message); plus a margin (deletion runs on a periodic check, not
on the dot, and clocks differ a little). The saga inbox and the replicas'
delete markers are both kept this long; a topic that keeps messages forever keeps them forever."""
from __future__ import annotations

import logging
from collections.abc import Iterable

from confluent_kafka.admin import AdminClient, ConfigResource

from stack.kafka_client import KafkaAccess

log = logging.getLogger(__name__)
REDELIVERY_MARGIN_S = 86_400.0  # kept a day beyond the longest retention


def keep_seconds(retention_ms: Iterable[int]) -> float | None:
    """The longest retention, in seconds, plus the margin; None when a topic keeps its messages
    forever (retention.ms < 0, i.e. -1)."""
    longest = 0.0
    for ms in retention_ms:
        if ms < 0:
            return None
        longest = max(longest, ms / 1000.0)
    return longest + REDELIVERY_MARGIN_S


def lifetime_ms(retention: int, segment: int) -> int:
    """The longest a message can stay in a topic: retention.ms + segment.ms; -1 for forever."""
    return -1 if retention < 0 else retention + max(segment, 0)


def retention_ms(kafka: KafkaAccess, topics: list[str]) -> dict[str, int]:
    """How long each topic can keep a message (see lifetime_ms), from retention.ms and segment.ms
    as the broker has them (the topic's own setting or the broker default)."""
    client = AdminClient(kafka.config())
    futures = client.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics])
    found = {}
    for resource, fut in futures.items():
        config = fut.result(timeout=30)
        found[resource.name] = lifetime_ms(int(config["retention.ms"].value), int(config["segment.ms"].value))
    return found


def redelivery_keep_seconds(kafka: KafkaAccess, topics: list[str]) -> float | None:
    """How long rows about these topics' messages must live (None: forever). Raises when the
    broker cannot answer: keep everything meanwhile."""
    found = retention_ms(kafka, topics)
    forever = sorted(t for t, ms in found.items() if ms < 0)
    if forever:
        log.info("topics %s keep messages forever: so are the rows that remember them", ", ".join(forever))
    return keep_seconds(found.values())
