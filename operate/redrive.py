"""Re-drive a dead letter back through the path it failed on, or discard it, with a dry run first.

A re-drive produces the original key, value and headers to the original topic and partition,
so the worker that gave up on it meets it again: a replication pair applies it through its
position guard (an old change never overwrites a newer row), a saga worker through its inbox
(a command acts once). A message that keeps coming back is not looped forever: after
MAX_REDRIVES re-drives it is refused, and must be discarded or its cause fixed in the code.
The re-drive is produced first and recorded after; a crash between the two can re-drive a
letter twice, which the guard and the inbox make harmless."""
from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Producer

from operate.audit import Action, record
from operate.letters import REDRIVES_HEADER, Letter
from stack.kafka_client import KafkaAccess

MAX_REDRIVES = 3


@dataclass(frozen=True)
class Plan:
    letter: Letter
    refused: str | None    # why it will not be re-driven; None: it will be
    effect: str            # what re-driving it does, for the dry run

    @property
    def target(self) -> str:
        return f"{self.letter.origin_topic}[{self.letter.origin_partition}]"


def effect_of(letter: Letter) -> str:
    if letter.dlq_topic.startswith("dlq.replication."):
        return (f"re-applied by replication pair {letter.worker or letter.dlq_topic.removeprefix('dlq.replication.')}"
                " (the position guard keeps a newer row)")
    if letter.dlq_topic.startswith("dlq.saga."):
        return f"handled again by saga worker {letter.dlq_topic.removeprefix('dlq.saga.')} (its inbox acts once)"
    if letter.dlq_topic.startswith("dlq.readmodel."):
        return f"folded in again by read model {letter.dlq_topic.removeprefix('dlq.readmodel.')}"
    return f"consumed again from {letter.origin_topic}"


def plan(letters: list[Letter], handled: dict[str, Action]) -> list[Plan]:
    plans = []
    for letter in letters:
        done = handled.get(letter.id)
        if done is not None:
            refused: str | None = f"already {'re-driven' if done.action == 'redrive' else 'discarded'} by {done.who}: {done.why}"
        elif not letter.origin_topic or letter.origin_partition is None:
            refused = "its origin is unknown (no dlq.topic/dlq.partition header)"
        elif letter.redrives >= MAX_REDRIVES:
            refused = (f"re-driven {letter.redrives} times and dead-lettered again each time: "
                       "fix the cause or discard it")
        else:
            refused = None
        plans.append(Plan(letter, refused, effect_of(letter)))
    return plans


def redrive(kafka: KafkaAccess, plans: list[Plan], who: str, why: str) -> list[Action]:
    """Produce every plan that is not refused; returns the recorded actions."""
    todo = [p for p in plans if p.refused is None]
    if not todo:
        return []
    producer = Producer(kafka.config(**{"enable.idempotence": True}))
    errors: list[str] = []
    for p in todo:
        m = p.letter
        headers: list[tuple[str, str | bytes | None]] = [(k, v) for k, v in m.headers if k != REDRIVES_HEADER]
        headers += [(REDRIVES_HEADER, str(m.redrives + 1).encode()), ("cdc.redriven.from", m.id.encode())]
        assert m.origin_partition is not None  # refused otherwise
        producer.produce(m.origin_topic, key=m.key, value=m.value, partition=m.origin_partition, headers=headers,
                         on_delivery=lambda err, _m: errors.append(str(err)) if err else None)
    if producer.flush(30) or errors:
        raise RuntimeError(f"re-drive not delivered: {errors[:3]} (nothing recorded; safe to try again)")
    actions = [Action.of("redrive", p.letter, who, why, p.target) for p in todo]
    record(kafka, actions)
    return actions


def discard(kafka: KafkaAccess, letters: list[Letter], handled: dict[str, Action], who: str, why: str) -> list[Action]:
    """Record that these letters are given up on (already handled ones are skipped)."""
    if not why.strip():
        raise ValueError("a discard needs a reason (--why)")
    actions = [Action.of("discard", m, who, why) for m in letters if m.id not in handled]
    record(kafka, actions)
    return actions
