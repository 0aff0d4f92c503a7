"""Switching the saga mode hands the order topic over: a worker of one mode that reads the
orders' events starts no earlier than where the other mode's order reader stopped, so an order
the other mode already started is not started again (it would be a no-op, as both modes derive
the same saga id and the participants' inboxes dedupe it, but a replay of every past order would
hold up the new ones). Before switching, let the running sagas end (`cdc observe sagas`)."""
from __future__ import annotations

import logging

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.sagas.topics import order_events_topic

log = logging.getLogger(__name__)
# The consumer group that starts sagas from OrderPlaced, per mode.
ORDER_READER = {"orchestration": "cdc-saga-orchestrator", "choreography": "cdc-choreography-payments"}
# Every group of a mode that reads the order topic (Faust's group id is the app id).
ORDER_GROUPS = {"orchestration": {"orchestrator": "cdc-saga-orchestrator"},
                "choreography": {"payments": "cdc-choreography-payments", "orders": "cdc-choreography-orders",
                                 "monitor": "cdc-choreography-monitor"}}


def handed_over(own: dict[int, int], other: dict[int, int]) -> dict[int, int]:
    """Partitions where the other mode got further: start there (no committed offset is -1)."""
    return {p: off for p, off in other.items() if off >= 0 and off > own.get(p, -1)}


def _committed(bootstrap: str, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, p) for p in partitions],
                                                                timeout=10)}
    finally:
        c.close()


def hand_over_orders(bootstrap: str, mode: str, name: str) -> None:
    group = ORDER_GROUPS[mode].get(name)
    if group is None:
        return  # this worker does not read the order topic
    topic = order_events_topic()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    meta = admin.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        return
    partitions = sorted(meta.partitions)
    other = next(m for m in ORDER_READER if m != mode)
    moves = handed_over(_committed(bootstrap, group, topic, partitions),
                        _committed(bootstrap, ORDER_READER[other], topic, partitions))
    if not moves:
        return
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, o) for p, o in sorted(moves.items())])
    try:
        for fut in admin.alter_consumer_group_offsets([request]).values():
            fut.result(timeout=30)
        log.info("%s: the %s mode read %s further; starting there: %s", group, other, topic, moves)
    except KafkaException as exc:  # another worker of this group is already running: it owns the position
        log.warning("%s: order topic hand-over skipped: %s", group, exc)
