"""Saga topic names, built in one place. Every saga message leaves a service through its
outbox; the EventRouter routes it by aggregatetype to outbox.event.<aggregatetype>, keyed by
the saga id, so one saga's messages stay in order on one partition."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.registry import Registry, ServiceSpec

ROUTED_PREFIX = "outbox.event."


def commands_aggregate(participant: str) -> str:
    return f"{participant}-commands"


def commands_topic(participant: str) -> str:
    return ROUTED_PREFIX + commands_aggregate(participant)


def replies_aggregate(saga: str) -> str:
    """aggregatetype of the participants' replies to one saga's orchestrator: each saga has its
    own, so an orchestrator reads only the replies of the sagas it runs."""
    return f"{saga}-replies"


def replies_topic(saga: str) -> str:
    return ROUTED_PREFIX + replies_aggregate(saga)


def events_aggregate(participant: str) -> str:
    """aggregatetype of a participant's saga events in the choreographed mode."""
    return f"{participant}-events"


def events_topic(participant: str) -> str:
    return ROUTED_PREFIX + events_aggregate(participant)


def routed_aggregates(registry: Registry, svc: ServiceSpec) -> list[str]:
    """Every outbox aggregate a service publishes: its own (declared), and the saga runtime's:
    a participant's replies and choreography events, the saga store's commands to each participant."""
    from services.registry import SAGA_STORE

    found = list(svc.aggregates)
    for saga in registry.sagas:
        if svc.name in saga.participants:
            found += [replies_aggregate(saga.name), events_aggregate(svc.name)]
        if svc.name == SAGA_STORE:
            steps = saga.definition.steps
            found += [commands_aggregate(p) for p in saga.participants
                      if any(s.participant == p and (s.command or s.compensation) for s in steps)]
    return list(dict.fromkeys(found))
