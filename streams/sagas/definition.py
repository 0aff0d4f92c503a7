"""A saga definition is a table of steps, read top to bottom as the business process, and
validated at start-up: every step before the pivot can be compensated, and each command
carries only the fields of the start payload its step names (`carries`), not the whole payload."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    participant: str
    command: str | None             # None: done locally by the initiator before the saga starts
    compensation: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    retries: int = Field(default=2, ge=0)   # resends of the command before giving up on it
    pivot: bool = False             # from here on the saga only goes forward (retried, never compensated)
    carries: tuple[str, ...] = ()   # fields of the start payload its command and compensation need
    nothing_to_undo: bool = False   # it only checks (e.g. validates data): before the pivot, no compensation


class SagaDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    steps: tuple[Step, ...] = Field(min_length=2)
    compensation_retries: int = Field(default=5, ge=0)
    max_timeout_s: float = Field(default=60.0, gt=0)
    # the business's limit for the whole saga, from its start: pipeline delays never move it (None: no limit)
    deadline_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> SagaDefinition:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"step names repeat: {names}")
        if self.steps[0].command is not None:
            raise ValueError("the first step is the initiator's local transaction (command: null)")
        if any(s.command is None for s in self.steps[1:]):
            raise ValueError("only the first step may be local; every other step sends a command")
        pivots = [i for i, s in enumerate(self.steps) if s.pivot]
        if len(pivots) > 1:
            raise ValueError(f"more than one pivot: {[self.steps[i].name for i in pivots]}")
        pivot = pivots[0] if pivots else len(self.steps)
        for step in self.steps[:pivot]:
            if step.compensation is None and not step.nothing_to_undo:
                raise ValueError(f"step {step.name} comes before the pivot but has no compensation "
                                 "(a step that only checks says nothing_to_undo=True)")
            if step.compensation is not None and step.nothing_to_undo:
                raise ValueError(f"step {step.name} has nothing to undo but names a compensation")
        for step in self.steps[pivot:]:
            if step.compensation is not None:
                raise ValueError(f"step {step.name} is at or after the pivot: it is retried, never compensated")
        return self

    def payload_for(self, step: int, payload: dict[str, Any]) -> dict[str, Any]:
        """What the command of `step` carries: the fields it names, nothing else."""
        return {k: payload[k] for k in self.steps[step].carries if k in payload}

    def travelling(self, payload: dict[str, Any]) -> dict[str, Any]:
        """What a choreographed saga's events carry from step to step (no coordinator keeps the
        payload): the fields some step names, never the rest of the start payload."""
        wanted = {k for s in self.steps for k in s.carries}
        return {k: v for k, v in payload.items() if k in wanted}

    @property
    def pivot_index(self) -> int:
        return next((i for i, s in enumerate(self.steps) if s.pivot), len(self.steps))

    def scaled(self, factor: float) -> SagaDefinition:
        """The same saga with every timeout multiplied (tests shorten them; slow sites lengthen them)."""
        steps = tuple(s.model_copy(update={"timeout_s": s.timeout_s * factor}) for s in self.steps)
        deadline = self.deadline_s * factor if self.deadline_s is not None else None
        return self.model_copy(update={"steps": steps, "max_timeout_s": self.max_timeout_s * factor,
                                       "deadline_s": deadline})

    def index(self, name: str) -> int:
        for i, s in enumerate(self.steps):
            if s.name == name:
                return i
        raise KeyError(f"saga {self.name} has no step {name!r}")
