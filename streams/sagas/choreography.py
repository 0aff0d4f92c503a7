"""The choreographed saga, pure: the same step table as the orchestrated one, run without a
coordinator. No I/O: the runtime (choreography_runtime.py) persists watches and writes events.

How it flows
- Each participant publishes what happened to its own step as a domain event (`outcome`).
- A step's success asks the next step's participant to act; a failure, or a compensation's
  success, asks the previous step's participant to compensate. So compensations run strictly
  in reverse, each gated on the one after it.
- The participant that asked keeps a *watch* on the step it asked (in its own database, in the
  same transaction as its event). No answer in time: it resends (same idempotency key), up to
  the step's retries (without limit at or after the pivot), then gives up with `abandon`: the
  asked participant undoes its step only if it never acted (it alone knows, under its lock, so
  a late success and the give-up cannot both win); if it did act, its success stands and the
  saga goes on. A repeated ask publishes nothing: the first answer is durable in the outbox,
  and answering repeats would ripple down the rest of the saga. A compensation that fails is
  resent after a growing back-off; one that keeps failing or timing out ends the saga with
  `quarantine` (FAILED, needs a person). The person, once the cause is fixed, has the watching
  participant ask that compensation again from attempt 1 (`take_over`, retry), or closes the
  saga by hand (resolve): both said in an event of the watcher's, with who and why.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from schemas.saga import Action, SagaEvent
from streams.sagas.deadlines import delay_detail, postponed, timeout_detail
from streams.sagas.definition import SagaDefinition
from streams.sagas.machine import step_timeout

WAITING, ANSWERED, ABANDONED, FAILED = "waiting", "answered", "abandoned", "failed"
RETRY_AFTER_FAILURE = "tried again after its back-off"
TAKEN_OVER = "taken over by a person"   # how a person's retry or resolve starts its reason


@dataclass(frozen=True)
class Ask:
    """What an event asks a participant to do."""
    step: int
    phase: Action
    attempt: int
    deadline: float
    cancel_only: bool = False


@dataclass(frozen=True)
class Watch:
    """A participant waiting for the step it asked to answer."""
    saga_id: str
    step: int
    phase: Action
    attempt: int
    deadline: float
    payload: dict[str, Any] = field(default_factory=dict)
    state: str = WAITING
    retry_pending: bool = False     # a failed compensation waits for its back-off before the resend
    cancel_only: bool = False
    reason: str | None = None


def participant_of(defn: SagaDefinition, step: int) -> str:
    return defn.steps[step].participant


def previous_compensable(defn: SagaDefinition, below: int) -> int | None:
    candidates = [i for i in range(below) if defn.steps[i].compensation]
    return max(candidates) if candidates else None


def next_ask(defn: SagaDefinition, step: int, action: Action, outcome: str) -> tuple[int, Action] | None:
    """Which step must act after `step`'s `action` ended with `outcome` (None: nobody)."""
    if action == "action" and outcome == "succeeded":
        return (step + 1, "action") if step + 1 < len(defn.steps) else None
    if outcome == "failed" and (action == "compensation" or step > defn.pivot_index):
        return None  # a failed compensation is resent by its watcher; a failure past the pivot ends FAILED
    prev = previous_compensable(defn, step)
    return (prev, "compensation") if prev is not None else None


def ask_of(defn: SagaDefinition, e: SagaEvent) -> Ask | None:
    if e.kind == "outcome":
        assert e.outcome is not None
        nxt = next_ask(defn, e.step, e.action, e.outcome)
        return Ask(nxt[0], nxt[1], 1, e.deadline) if nxt else None
    if e.kind == "resend":
        return Ask(e.step, e.action, e.attempt, e.deadline, e.cancel_only)
    if e.kind == "abandon":
        return Ask(e.step, "compensation", 1, e.deadline, cancel_only=True)
    return None


def outcome_event(defn: SagaDefinition, saga_id: str, step: int, action: Action, outcome: str, reason: str | None,
                  attempt: int, payload: dict[str, Any], now: float) -> SagaEvent:
    """A participant's event about its step, with the deadline of what it asks next."""
    nxt = next_ask(defn, step, action, outcome)
    deadline = now + step_timeout(defn, nxt[0], 1) if nxt else 0.0
    return SagaEvent(kind="outcome", saga=defn.name, saga_id=saga_id, step=step, action=action, outcome=outcome,  # type: ignore[arg-type]
                     reason=reason, attempt=attempt, deadline=deadline, at=now, payload=payload)


def watch_for(defn: SagaDefinition, e: SagaEvent) -> Watch | None:
    """The watch the emitter of `e` keeps on the step `e` asks to act."""
    ask = ask_of(defn, e)
    if ask is None:
        return None
    return Watch(e.saga_id, ask.step, ask.phase, ask.attempt, ask.deadline, e.payload, cancel_only=ask.cancel_only)


def answers(w: Watch, e: SagaEvent) -> bool:
    """Does outcome `e` answer watch `w`? A give-up is also answered by the step's (late) success."""
    if e.kind != "outcome" or e.step != w.step or e.saga_id != w.saga_id:
        return False
    return e.action == w.phase or (w.cancel_only and e.action == "action" and e.outcome == "succeeded")


def _event(defn: SagaDefinition, w: Watch, kind: str, now: float, reason: str | None = None) -> SagaEvent:
    return SagaEvent(kind=kind, saga=defn.name, saga_id=w.saga_id, step=w.step, action=w.phase, attempt=w.attempt,  # type: ignore[arg-type]
                     deadline=w.deadline, cancel_only=w.cancel_only, at=now, payload=w.payload, reason=reason)


def _resend(defn: SagaDefinition, w: Watch, now: float, attempt: int) -> tuple[list[Watch], list[SagaEvent]]:
    backoff_over = w.retry_pending  # a failed compensation tried again: not a timeout
    w = replace(w, attempt=attempt, deadline=now + step_timeout(defn, w.step, attempt), retry_pending=False)
    return [w], [_event(defn, w, "resend", now, RETRY_AFTER_FAILURE if backoff_over else None)]


def _quarantine(defn: SagaDefinition, w: Watch, now: float, why: str) -> tuple[list[Watch], list[SagaEvent]]:
    w = replace(w, state=FAILED, reason=why)
    return [w], [_event(defn, w, "quarantine", now, why)]


def on_answer(defn: SagaDefinition, w: Watch, e: SagaEvent, now: float) -> tuple[list[Watch], list[SagaEvent]]:
    """The watched step answered."""
    if w.state != WAITING or not answers(w, e):
        return [w], []
    if w.phase == "compensation" and e.action == "compensation" and e.outcome == "failed":
        if w.retry_pending:
            return [w], []  # an older attempt's failure: the resend is already planned
        why = f"compensation of {defn.steps[w.step].name} failed: {e.reason}"
        if w.attempt > defn.compensation_retries:
            return _quarantine(defn, w, now, why)
        backoff = step_timeout(defn, w.step, w.attempt)
        return [replace(w, attempt=w.attempt + 1, deadline=now + backoff, retry_pending=True, reason=why)], []
    return [replace(w, state=ANSWERED)], []


def take_over(defn: SagaDefinition, w: Watch, action: str, by: str, why: str,
              now: float) -> tuple[list[Watch], list[SagaEvent]]:
    """A person's decision on a FAILED saga, at the participant whose watch quarantined it:
    `retry` asks the failed compensation again from attempt 1 (the watch waits again, with its
    usual resends and back-off); `resolve` closes the watch, and the saga is RESOLVED."""
    from streams.sagas.machine import NotRetryable

    if w.state != FAILED:
        raise NotRetryable(f"saga {w.saga_id} is not FAILED at {defn.steps[w.step].name} (its watch is {w.state})")
    note = f"{TAKEN_OVER}: {action} by {by}: {why}"
    if action == "retry":
        w = replace(w, state=WAITING, attempt=1, deadline=now + step_timeout(defn, w.step, 1), retry_pending=False,
                    reason=None)
        return [w], [_event(defn, w, "resend", now, note)]
    if action == "resolve":
        w = replace(w, state=ANSWERED, reason=note)
        return [w], [_event(defn, w, "resolve", now, note)]
    raise ValueError(f"unknown action {action!r}: retry or resolve")


def taken_over(e: SagaEvent) -> bool:
    return e.kind in ("resend", "resolve") and (e.reason or "").startswith(TAKEN_OVER)


def on_delay(defn: SagaDefinition, w: Watch, now: float, why: str) -> tuple[list[Watch], list[SagaEvent]] | None:
    """The watch is due but the pipeline, not the neighbour, may hold the answer: move its deadline
    (a whole step timeout from now) and say so. None: it cannot move (a failed compensation's
    back-off is a timer, not a wait), so `on_due` decides."""
    if w.state != WAITING or now < w.deadline or w.retry_pending:
        return None
    moved = postponed(now, step_timeout(defn, w.step, w.attempt), None)
    if moved is None:
        return None
    w = replace(w, deadline=moved)
    return [w], [delay_event(defn, w, now, why)]


def delay_event(defn: SagaDefinition, w: Watch, now: float, why: str) -> SagaEvent:
    """The watch's deadline moved (an infrastructure delay): for the saga's timeline."""
    return _event(defn, w, "delay", now, why)


def on_due(defn: SagaDefinition, w: Watch, now: float) -> tuple[list[Watch], list[SagaEvent]]:
    """`now` has passed the watch's deadline."""
    if w.state != WAITING or now < w.deadline:
        return [w], []
    step = defn.steps[w.step]
    if w.retry_pending:
        return _resend(defn, w, now, w.attempt)
    if w.phase == "compensation":
        if w.attempt > defn.compensation_retries:
            return _quarantine(defn, w, now, f"compensation of {step.name} timed out")
        return _resend(defn, w, now, w.attempt + 1)
    if w.step >= defn.pivot_index or w.attempt <= step.retries:
        return _resend(defn, w, now, w.attempt + 1)
    # Give up on the step: it undoes itself if it never acted; if it did, its success stands.
    undo = Watch(w.saga_id, w.step, "compensation", 1, now + step_timeout(defn, w.step, 1), w.payload,
                 cancel_only=True)
    return [replace(w, state=ABANDONED), undo], [_event(defn, undo, "abandon", now, f"{step.name} timed out")]


# --- the saga monitor's view (a passive projection; nothing depends on it to make progress) ---

TERMINAL = ("COMPLETED", "COMPENSATED", "FAILED", "RESOLVED")


def status_after(defn: SagaDefinition, status: str | None, e: SagaEvent) -> tuple[str, str | None]:
    """(status, reason) of a choreographed saga after event `e`; terminal states stick, but for a
    person's decision on a FAILED one."""
    if status == "FAILED" and taken_over(e):
        return ("COMPENSATING", None) if e.kind == "resend" else ("RESOLVED", e.reason)
    if status in TERMINAL:
        return status, None
    name = defn.steps[e.step].name
    if e.kind == "quarantine":
        return "FAILED", e.reason
    if e.kind == "abandon":
        return "COMPENSATING", f"{name} timed out"
    if e.kind != "outcome":
        return status or "RUNNING", None
    nxt = next_ask(defn, e.step, e.action, e.outcome or "")
    if e.action == "action" and e.outcome == "succeeded":
        return ("COMPLETED", None) if nxt is None else ("RUNNING", None)
    if e.action == "action":  # failed
        if e.step > defn.pivot_index:
            return "FAILED", f"{name} failed past the pivot: {e.reason}"
        return ("COMPENSATING" if nxt else "COMPENSATED"), f"{name}: {e.reason}"
    if e.outcome == "succeeded" and nxt is None:
        return "COMPENSATED", None
    return "COMPENSATING", None


def timeline_entries(defn: SagaDefinition, e: SagaEvent) -> list[tuple[str, int, str, str, str]]:
    """(kind, step, step name, action, detail) rows of the saga timeline for one event, in the
    orchestrator's vocabulary: what was `replied`, what was (re)`sent`, what `timed_out`."""
    rows: list[tuple[str, int, str, str, str]] = []
    step = defn.steps[e.step]
    if e.kind == "outcome" and e.step == 0 and e.action == "action" and step.command is None:
        rows.append(("started", e.step, step.name, e.action, "the initiator's local step committed"))
    elif e.kind == "outcome":
        rows.append(("replied", e.step, step.name, e.action, f"{e.outcome}{': ' + e.reason if e.reason else ''}"))
    elif e.kind == "abandon":
        rows.append(("timed_out", e.step, step.name, "action",
                     timeout_detail("no answer: compensate it if it never acted")))
    elif taken_over(e):
        rows.append(("retried" if e.kind == "resend" else "resolved", e.step, step.name, e.action,
                     (e.reason or "").removeprefix(f"{TAKEN_OVER}: ")))
    elif e.kind == "resend" and e.reason != RETRY_AFTER_FAILURE:
        rows.append(("timed_out", e.step, step.name, e.action, timeout_detail(f"no answer to attempt {e.attempt - 1}")))
    elif e.kind == "delay":
        rows.append(("delayed", e.step, step.name, e.action, delay_detail(e.reason or "")))
    elif e.kind == "quarantine":
        rows.append(("quarantined", e.step, step.name, e.action, e.reason or ""))
    ask = ask_of(defn, e)
    if ask is not None:
        asked = defn.steps[ask.step]
        name = asked.command if ask.phase == "action" else asked.compensation
        rows.append(("sent", ask.step, asked.name, ask.phase, f"{name} attempt {ask.attempt}"))
    return rows
