"""The saga state machine, pure: (state, reply or clock) -> (new state, commands to send).
No I/O: the orchestrator persists the state and writes the commands to its outbox in one
transaction, and tests run it in milliseconds.

Rules
- A step's action that succeeds moves on to the next step; the last one completes the saga.
- A step that replies `failed` had no effect: compensate the completed steps before it, in
  reverse, one at a time, each gated on its reply.
- No reply in time: resend (same idempotency key) up to the step's retries, then compensate,
  including the timed-out step itself (its command may still arrive late: the participant
  keeps a marker so the late action becomes a no-op).
- At or after the pivot the saga only goes forward: timeouts resend, without limit. The pivot
  itself may still refuse (then the steps before it are compensated); a step after it may not.
- A compensation that fails is resent after a growing back-off (the deadline holds the resend
  time); one that keeps failing or timing out ends the saga FAILED (quarantined).
- Replies that do not match what the saga waits for (duplicates, late attempts) change nothing.
- A person takes over a FAILED saga: `retry` starts its failed compensation again from attempt 1
  (once the cause is fixed; the participant runs a failed compensation again), `resolve` closes
  it as handled outside the saga (RESOLVED, with the reason). A refused action is final, so a saga
  that failed past its pivot can only be resolved.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from schemas.saga import Action, SagaCommand, SagaReply
from streams.sagas.definition import SagaDefinition


class SagaStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPENSATING = "COMPENSATING"
    COMPLETED = "COMPLETED"
    COMPENSATED = "COMPENSATED"
    FAILED = "FAILED"
    RESOLVED = "RESOLVED"  # was FAILED; a person handled it outside the saga

    @property
    def terminal(self) -> bool:
        return self in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.FAILED, SagaStatus.RESOLVED)


@dataclass(frozen=True)
class SagaState:
    saga_id: str
    status: SagaStatus
    step: int                      # the step whose reply the saga waits for
    phase: Action                  # waiting for its action or its compensation
    attempt: int                   # attempt of the command in flight (1-based)
    deadline: float                # when that command times out
    completed: tuple[int, ...] = ()  # steps whose action succeeded or may have (timed out)
    payload: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    retry_pending: bool = False      # a failed compensation waits for its back-off before the resend


@dataclass(frozen=True)
class Transition:
    state: SagaState
    commands: tuple[SagaCommand, ...] = ()


def step_timeout(defn: SagaDefinition, step: int, attempt: int) -> float:
    """How long to wait for a step's reply: doubles with each attempt, capped."""
    return min(defn.steps[step].timeout_s * 2 ** (attempt - 1), defn.max_timeout_s)


def _command(defn: SagaDefinition, state: SagaState) -> SagaCommand:
    step = defn.steps[state.step]
    name = step.command if state.phase == "action" else step.compensation
    assert name is not None
    return SagaCommand(saga_id=state.saga_id, step=state.step, step_name=step.name, action=state.phase,
                       participant=step.participant, name=name, attempt=state.attempt, deadline=state.deadline,
                       payload=defn.payload_for(state.step, state.payload), saga=defn.name,
                       local_action=step.command is None)


def _send(defn: SagaDefinition, state: SagaState, now: float) -> Transition:
    state = replace(state, deadline=now + step_timeout(defn, state.step, state.attempt))
    return Transition(state, (_command(defn, state),))


def start(defn: SagaDefinition, saga_id: str, payload: dict[str, Any], now: float) -> Transition:
    """The initiator's local step (e.g. order PENDING) is done; send the first command."""
    state = SagaState(saga_id, SagaStatus.RUNNING, step=1, phase="action", attempt=1, deadline=0.0,
                      completed=(0,), payload=payload)
    return _send(defn, state, now)


def _compensate_from(defn: SagaDefinition, state: SagaState, below: int, now: float, reason: str | None) -> Transition:
    """Compensate the next completed step below `below` that has a compensation."""
    candidates = [i for i in state.completed if i < below and defn.steps[i].compensation]
    if not candidates:
        return Transition(replace(state, status=SagaStatus.COMPENSATED, reason=state.reason or reason))
    nxt = max(candidates)
    state = replace(state, status=SagaStatus.COMPENSATING, step=nxt, phase="compensation", attempt=1,
                    reason=state.reason or reason)
    return _send(defn, state, now)


def on_reply(defn: SagaDefinition, state: SagaState, reply: SagaReply, now: float) -> Transition:
    if state.status.terminal or reply.step != state.step or reply.action != state.phase:
        return Transition(state)  # duplicate, stale or late: nothing to do
    if state.phase == "action":
        if reply.outcome == "succeeded":
            state = replace(state, completed=(*state.completed, state.step))
            if state.step + 1 == len(defn.steps):
                return Transition(replace(state, status=SagaStatus.COMPLETED))
            return _send(defn, replace(state, step=state.step + 1, attempt=1), now)
        if state.step > defn.pivot_index:
            return Transition(replace(state, status=SagaStatus.FAILED,
                                      reason=f"{defn.steps[state.step].name} failed past the pivot: {reply.reason}"))
        return _compensate_from(defn, state, state.step, now, f"{defn.steps[state.step].name}: {reply.reason}")
    # compensation phase
    if reply.outcome == "succeeded":
        return _compensate_from(defn, replace(state, retry_pending=False), state.step, now, None)
    if state.retry_pending:
        return Transition(state)  # an older attempt's failure: the resend is already planned
    why = f"compensation of {defn.steps[state.step].name} failed: {reply.reason}"
    if state.attempt > defn.compensation_retries:
        return Transition(replace(state, status=SagaStatus.FAILED, reason=why))
    backoff = step_timeout(defn, state.step, state.attempt)
    return Transition(replace(state, attempt=state.attempt + 1, deadline=now + backoff, retry_pending=True))


def _retry_compensation(defn: SagaDefinition, state: SagaState, now: float, why: str) -> Transition:
    if state.attempt > defn.compensation_retries:
        return Transition(replace(state, status=SagaStatus.FAILED, reason=why))
    return _send(defn, replace(state, attempt=state.attempt + 1), now)


def on_timeout(defn: SagaDefinition, state: SagaState, now: float) -> Transition:
    """Called when `now` has passed the deadline of the command in flight."""
    if state.status.terminal or now < state.deadline:
        return Transition(state)
    step = defn.steps[state.step]
    if state.retry_pending:  # the back-off after a failed compensation is over: resend it
        return _send(defn, replace(state, retry_pending=False), now)
    if state.phase == "compensation":
        return _retry_compensation(defn, state, now, f"compensation of {step.name} timed out")
    if state.step >= defn.pivot_index or state.attempt <= step.retries:
        return _send(defn, replace(state, attempt=state.attempt + 1), now)
    # Give up on the step: it may still act, so it is compensated too, first.
    state = replace(state, completed=(*state.completed, state.step))
    return _compensate_from(defn, state, state.step + 1, now, f"{step.name} timed out")


class NotRetryable(ValueError):
    """What a person asked of a saga cannot be done in its state: the message says why."""


def retry(defn: SagaDefinition, state: SagaState, now: float) -> Transition:
    """Send a FAILED saga's failed compensation again, attempt 1, with its retries restored."""
    if state.status != SagaStatus.FAILED:
        raise NotRetryable(f"saga {state.saga_id} is {state.status.value}: only a FAILED saga is retried")
    if state.phase != "compensation":
        raise NotRetryable(f"saga {state.saga_id} failed past its pivot ({state.reason}): a refused action is final; "
                           "resolve it instead")
    return _send(defn, replace(state, status=SagaStatus.COMPENSATING, attempt=1, retry_pending=False), now)


def resolve(state: SagaState, why: str) -> Transition:
    """Close a FAILED saga as handled by hand; nothing is sent."""
    if state.status != SagaStatus.FAILED:
        raise NotRetryable(f"saga {state.saga_id} is {state.status.value}: only a FAILED saga is resolved")
    return Transition(replace(state, status=SagaStatus.RESOLVED, reason=f"resolved by hand: {why} (was: {state.reason})"))
