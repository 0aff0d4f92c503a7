"""Saga messages: commands the orchestrator sends (through its outbox) and participants' replies."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["action", "compensation"]


class SagaCommand(BaseModel):
    model_config = ConfigDict(frozen=True)

    saga_id: str
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
