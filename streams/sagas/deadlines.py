"""Whose time ran out: the participant's, or the pipeline's? Pure rules, no I/O: the timeout scans
of both saga modes call them with what `pipeline.PipelineProbe` found out.

A step's timeout measures the participant. While the message cannot have reached it, or its answer
cannot have come back (the broker unreachable, a capture connector not RUNNING, the message still
in the participant's backlog while the participant is alive and reading, the answer still in the
waiting side's own backlog), the deadline moves instead of running out: an *infrastructure delay*.
A participant whose consumer group has no live member while the pipeline is healthy is down: its
step times out as before (a *participant timeout*). A saga-wide business deadline, when the
definition declares one, is never moved.
"""
from __future__ import annotations

from dataclasses import dataclass, field

INFRASTRUCTURE_DELAY = "infrastructure delay"
PARTICIPANT_TIMEOUT = "participant timeout"


@dataclass(frozen=True)
class PipelineFacts:
    """What the waiting side could learn about the path of one step's message and its answer."""
    unreachable: str | None = None                            # a check could not answer: why (fail safe)
    connectors: dict[str, str] = field(default_factory=dict)  # capture connector -> state
    members: int = 0                                          # live members of the participant's group
    backlog: int = 0                                          # messages its group has not committed yet
    own_backlog: int = 0                                      # answers the waiting side has not read yet


def infrastructure_delay(facts: PipelineFacts) -> str | None:
    """Why the pipeline may be what holds the answer; None: the pipeline is healthy, the
    participant's clock runs."""
    if facts.unreachable:
        return f"pipeline not answering: {facts.unreachable}"
    stopped = [f"{name} {state}" for name, state in sorted(facts.connectors.items()) if state != "RUNNING"]
    if stopped:
        return f"capture not running: {', '.join(stopped)}"
    if facts.own_backlog > 0:
        return f"{facts.own_backlog} message(s) not read yet by the waiting side"
    if facts.backlog > 0 and facts.members > 0:  # alive and reading: the message waits its turn
        return f"{facts.backlog} message(s) in the participant's backlog"
    return None


def postponed(now: float, timeout: float, business_deadline: float | None) -> float | None:
    """The deadline after an infrastructure delay: a whole step timeout from now (the participant
    gets its full time once the pipeline is back), never past the business deadline. None: the
    business deadline has passed, so the step times out as usual."""
    if business_deadline is not None and now >= business_deadline:
        return None
    moved = now + timeout
    return moved if business_deadline is None else min(moved, business_deadline)


def downtime(last_tick: float | None, now: float, grace: float) -> float:
    """Seconds the scanner itself was away (a gap in its ticks longer than `grace`), else 0: every
    pending deadline moves by that much, since nobody could read the answers meanwhile."""
    if last_tick is None:
        return 0.0
    gap = now - last_tick
    return gap if gap > grace else 0.0


def delay_detail(reason: str) -> str:
    return f"{INFRASTRUCTURE_DELAY}: {reason}; deadline moved"


def timeout_detail(what: str) -> str:
    return f"{PARTICIPANT_TIMEOUT}: {what}"
