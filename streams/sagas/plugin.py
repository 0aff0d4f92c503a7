"""A saga as a domain declares it: its step table, what starts it, and the handlers each
participant service registers. The saga runtimes (orchestrated and choreographed) take any
number of these from the enabled domains (`services.registry`)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from streams.sagas.definition import SagaDefinition
from streams.sagas.handlers import Handler
from streams.sagas.topics import ROUTED_PREFIX


@dataclass(frozen=True)
class SagaStart:
    """The initiator's outbox event that starts a saga (its local step has committed)."""
    aggregate: str             # outbox aggregatetype: the event's topic is outbox.event.<aggregate>
    event_type: str            # e.g. OrderPlaced
    model: type[BaseModel]     # validates the event's payload: a bad event never starts a saga
    key: str                   # the payload field that names the saga (its business key)

    @property
    def topic(self) -> str:
        return ROUTED_PREFIX + self.aggregate


@dataclass(frozen=True)
class SagaPlugin:
    definition: SagaDefinition
    start: SagaStart
    handlers: Mapping[str, Mapping[str, Handler]]   # participant service -> command -> handler

    def __post_init__(self) -> None:
        for step in self.definition.steps:
            for name in (step.command, step.compensation):
                if name is not None and name not in self.handlers.get(step.participant, {}):
                    raise ValueError(f"saga {self.definition.name}: {step.participant} has no handler for {name}")

    @property
    def name(self) -> str:
        return self.definition.name

    def business_key(self, payload: dict[str, Any]) -> str:
        """Validated start payload -> the saga's business key."""
        validated = self.start.model.model_validate(payload)
        return str(getattr(validated, self.start.key))

    @property
    def participants(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.participant for s in self.definition.steps))
