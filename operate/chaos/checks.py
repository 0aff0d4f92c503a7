"""The pipeline's own invariants after a chaos run, whatever the domain: every replica equals its
source, every saga started during the run ended, and no dead-letter topic grew (the run injects
no bad message, so a letter means a fault was taken for a poison message)."""
from __future__ import annotations

import time

import psycopg
from confluent_kafka import Consumer, TopicPartition

from observe.replication import wait_converged
from operate.letters import READ_GROUP, dead_letter_topics
from stack.kafka_client import KafkaAccess
from streams.spec import ReplicationSpec

ENDED = ("COMPLETED", "COMPENSATED", "FAILED")


def dead_letter_counts(kafka: KafkaAccess) -> dict[str, int]:
    """dlq topic -> messages it holds (end offsets summed)."""
    consumer = Consumer(kafka.config(**{"group.id": READ_GROUP, "enable.auto.commit": False}))
    try:
        out = {}
        for topic in dead_letter_topics(kafka):
            meta = consumer.list_topics(topic, timeout=15).topics[topic]
            out[topic] = sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1]
                             for p in meta.partitions)
        return out
    finally:
        consumer.close()


def new_dead_letters(before: dict[str, int], after: dict[str, int]) -> list[str]:
    return [f"{t}: {n - before.get(t, 0)} new" for t, n in sorted(after.items()) if n > before.get(t, 0)]


def replicas_differ(spec: ReplicationSpec, env: dict[str, str], within: float) -> list[str]:
    reports = wait_converged(list(spec.pairs), env, within, interval=2.0)
    return [f"{r.pair}: rows {r.source_rows}/{r.replica_rows}, checksums "
            f"{'match' if r.checksums_match else 'differ'}, consumer lag {r.consumer_lag}"
            for r in reports if not r.converged]


def sagas_not_ended(env: dict[str, str], since_epoch: float, within: float) -> list[str]:
    """Every saga the store holds that started since the run began, until all ended or `within` passed."""
    deadline = time.monotonic() + within
    while True:
        with psycopg.connect(env["ORCHESTRATOR_OBSERVER_URL"], connect_timeout=5) as conn:
            open_ = conn.execute("SELECT saga_type, business_key, state, step FROM saga_instances "
                                 "WHERE created_at >= to_timestamp(%s) AND state <> ALL(%s) ORDER BY created_at",
                                 (since_epoch, list(ENDED))).fetchall()
        if not open_ or time.monotonic() > deadline:
            return [f"{t} {k}: {s} at step {st}" for t, k, s, st in open_]
        time.sleep(2)
