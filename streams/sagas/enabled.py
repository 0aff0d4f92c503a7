"""The sagas of the enabled domains, as the saga runtimes need them: definitions by name,
the handlers of each participant service, and which outbox event starts which saga."""
from __future__ import annotations

from dataclasses import dataclass, replace

from services.registry import current
from streams.sagas.definition import SagaDefinition
from streams.sagas.handlers import Handler
from streams.sagas.plugin import SagaPlugin


@dataclass(frozen=True)
class Sagas:
    plugins: tuple[SagaPlugin, ...]

    def __post_init__(self) -> None:
        names = [p.name for p in self.plugins]
        if len(set(names)) != len(names):
            raise ValueError(f"saga names repeat: {names}")
        for p in self.participants("orchestration"):
            self.handlers(p)  # a command name served by two different handlers is refused here

    def definition(self, name: str) -> SagaDefinition:
        return self.plugin(name).definition

    def plugin(self, name: str) -> SagaPlugin:
        for p in self.plugins:
            if p.name == name:
                return p
        raise KeyError(f"unknown saga {name!r}; enabled: {', '.join(p.name for p in self.plugins) or 'none'}")

    @property
    def definitions(self) -> tuple[SagaDefinition, ...]:
        return tuple(p.definition for p in self.plugins)

    def participants(self, mode: str) -> tuple[str, ...]:
        """Services that run a saga worker: in the orchestrated mode those that receive a command;
        in the choreographed mode every step's participant (the initiator watches its first step)."""
        found: list[str] = []
        for p in self.plugins:
            for step in p.definition.steps:
                if mode == "choreography" or step.command or step.compensation:
                    found.append(step.participant)
        return tuple(dict.fromkeys(found))

    def handlers(self, participant: str) -> dict[str, Handler]:
        merged: dict[str, Handler] = {}
        for p in self.plugins:
            for name, handler in p.handlers.get(participant, {}).items():
                if merged.get(name, handler) is not handler:
                    raise ValueError(f"{participant}: two sagas register different handlers for {name}")
                merged[name] = handler
        return merged

    def starting(self, topic: str, event_type: str) -> SagaPlugin | None:
        return next((p for p in self.plugins if p.start.topic == topic and p.start.event_type == event_type), None)

    @property
    def start_topics(self) -> list[str]:
        return list(dict.fromkeys(p.start.topic for p in self.plugins))

    def scaled(self, factor: float) -> Sagas:
        """Every step timeout multiplied (tests shorten them; slow sites lengthen them)."""
        if factor == 1.0:
            return self
        return Sagas(tuple(replace(p, definition=p.definition.scaled(factor)) for p in self.plugins))


def enabled(timeout_scale: float = 1.0) -> Sagas:
    return Sagas(current().sagas).scaled(timeout_scale)
