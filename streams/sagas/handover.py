"""Switching the saga mode hands each saga's start topic over: a worker of one mode that reads a
start topic starts no earlier than where the other mode's starter stopped, so a saga the other
mode already started is not started again (it would be a no-op, as both modes derive the same
saga id and the participants' inboxes dedupe it, but a replay of every past start event would
hold up the new ones). Before switching, let the running sagas end (`cdc observe sagas`)."""
from __future__ import annotations

import logging

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from stack.kafka_client import KafkaAccess
from streams.sagas.enabled import enabled
from streams.sagas.plugin import SagaPlugin

log = logging.getLogger(__name__)
GROUP_PREFIX = {"orchestration": "cdc-saga-", "choreography": "cdc-choreography-"}  # + worker: Faust's app id


def starter(plugin: SagaPlugin, mode: str) -> str:
    """The worker that starts the saga from its start event: the orchestrator, or the first
    command's participant."""
    return "orchestrator" if mode == "orchestration" else plugin.definition.steps[1].participant


def start_readers(plugin: SagaPlugin, mode: str) -> set[str]:
    """Every worker of `mode` that reads the saga's start topic."""
    if mode == "orchestration":
        return {"orchestrator"}
    return {plugin.definition.steps[0].participant, plugin.definition.steps[1].participant, "monitor"}


def handed_over(own: dict[int, int], other: dict[int, int]) -> dict[int, int]:
    """Partitions where the other mode got further: start there (no committed offset is -1)."""
    return {p: off for p, off in other.items() if off >= 0 and off > own.get(p, -1)}


def _committed(kafka: KafkaAccess, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
    c = Consumer(kafka.config(**{"group.id": group, "enable.auto.commit": False}))
    try:
        return {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, p) for p in partitions],
                                                                timeout=30)}
    finally:
        c.close()


def hand_over_starts(kafka: KafkaAccess, mode: str, name: str) -> None:
    other = next(m for m in GROUP_PREFIX if m != mode)
    for plugin in enabled().plugins:
        if name in start_readers(plugin, mode):
            _hand_over(kafka, plugin.start.topic, GROUP_PREFIX[mode] + name,
                       GROUP_PREFIX[other] + starter(plugin, other), other)


def _hand_over(kafka: KafkaAccess, topic: str, group: str, other_group: str, other: str) -> None:
    admin = AdminClient(kafka.config())
    meta = admin.list_topics(topic, timeout=30).topics.get(topic)
    if meta is None or meta.error is not None:
        return
    partitions = sorted(meta.partitions)
    moves = handed_over(_committed(kafka, group, topic, partitions), _committed(kafka, other_group, topic, partitions))
    if not moves:
        return
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, o) for p, o in sorted(moves.items())])
    try:
        for fut in admin.alter_consumer_group_offsets([request]).values():
            fut.result(timeout=30)
        log.info("%s: the %s mode read %s further; starting there: %s", group, other, topic, moves)
    except KafkaException as exc:  # another worker of this group is already running: it owns the position
        log.warning("%s: start topic hand-over skipped: %s", group, exc)
