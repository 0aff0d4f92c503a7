"""Saga topic names, built in one place. Every saga message leaves a service through its
outbox; the EventRouter routes it by aggregatetype to outbox.event.<aggregatetype>, keyed by
the saga id, so one saga's messages stay in order on one partition."""
from __future__ import annotations

ROUTED_PREFIX = "outbox.event."
REPLIES = "saga-replies"          # aggregatetype of every participant's replies
ORDER_EVENTS = "order"            # aggregatetype of the orders service's events (OrderPlaced)


def commands_aggregate(participant: str) -> str:
    return f"{participant}-commands"


def commands_topic(participant: str) -> str:
    return ROUTED_PREFIX + commands_aggregate(participant)


def replies_topic() -> str:
    return ROUTED_PREFIX + REPLIES


def order_events_topic() -> str:
    return ROUTED_PREFIX + ORDER_EVENTS


def events_aggregate(participant: str) -> str:
    """aggregatetype of a participant's saga events in the choreographed mode."""
    return f"{participant}-events"


def events_topic(participant: str) -> str:
    return ROUTED_PREFIX + events_aggregate(participant)
