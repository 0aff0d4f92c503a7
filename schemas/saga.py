"""Saga messages: commands the orchestrator sends (through its outbox) and participants' replies."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["action", "compensation"]


class SagaCommand(BaseModel):
    model_config = ConfigDict(frozen=True)

    saga_id: str
    saga: str                 # the saga definition's name: its replies go to that saga's replies topic
    step: int
    step_name: str
    action: Action
    participant: str
    name: str                 # the command, imperative: ChargePayment, RefundPayment
    attempt: int = 1
    deadline: float           # epoch seconds; a participant ignores a command past it
    payload: dict[str, Any] = Field(default_factory=dict)
    # The step's action was the initiator's own local transaction (no command, no inbox row):
    # its compensation always runs.
    local_action: bool = False

    @property
    def idempotency_key(self) -> tuple[str, int, str]:
        """(saga, step, action): a retried command (a new message) must not act twice."""
        return (self.saga_id, self.step, self.action)


class SagaReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    saga_id: str
    step: int
    action: Action
    outcome: Literal["succeeded", "failed"]
    reason: str | None = None


EventKind = Literal["outcome", "resend", "abandon", "quarantine", "delay", "resolve"]


class SagaEvent(BaseModel):
    """A choreographed saga's message: a participant's domain event about its own step
    (`outcome`), or a watcher's reminder to a neighbour that has not answered (`resend`),
    its giving up on it (`abandon`: undo it if you never acted) or on a compensation that
    keeps failing (`quarantine`), or a note that its deadline moved because the pipeline, not the
    neighbour, held the answer (`delay`, for the saga's timeline; it asks nothing). A person taking
    over a FAILED saga sends a `resend` (retry) or a `resolve` (closed by hand). Published
    through the emitter's outbox, keyed by saga id."""
    model_config = ConfigDict(frozen=True)

    kind: EventKind
    saga: str                         # the saga definition's name: an events topic carries every saga's
    saga_id: str
    business_key: str | None = None   # set on a saga's first event (its start)
    step: int                         # the step the event is about
    action: Action
    outcome: Literal["succeeded", "failed"] | None = None   # set on `outcome` events
    reason: str | None = None
    attempt: int = 1
    deadline: float = 0.0             # when what this event asks for times out (epoch seconds)
    cancel_only: bool = False         # a compensation asked after a timeout: undo only if never acted
    at: float                         # when the emitter committed it (epoch seconds)
    payload: dict[str, Any] = Field(default_factory=dict)
