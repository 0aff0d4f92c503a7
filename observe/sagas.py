"""Saga observation through the orchestrator's read-only observer role: instances by state,
stuck ones stalest first, quarantined (FAILED) ones, missed step deadlines by cause (participant
timeout vs infrastructure delay), and the step timeline of one saga."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from streams.sagas.deadlines import INFRASTRUCTURE_DELAY, PARTICIPANT_TIMEOUT
from streams.sagas.stuck import STUCK, STUCK_AFTER_S

CAUSE = {"timed_out": PARTICIPANT_TIMEOUT, "delayed": INFRASTRUCTURE_DELAY}


@dataclass
class SagaSummary:
    by_state: dict[str, int]
    stuck: list[tuple]        # (id, state, step, phase, attempt, updated_at) of sagas idle too long
    failed: list[tuple]       # (id, reason, updated_at): quarantined, need a person
    # cause -> (step deadlines missed, sagas concerned): "participant timeout" (resent, then
    # compensated) or "infrastructure delay" (the pipeline held the answer: the deadline moved)
    deadlines: dict[str, tuple[int, int]] = field(default_factory=dict)


def summary(observer_url: str, stuck_after_s: float = STUCK_AFTER_S) -> SagaSummary:
    with psycopg.connect(observer_url) as conn:
        rows = conn.execute("SELECT state, count(*) FROM saga_instances GROUP BY state ORDER BY state").fetchall()
        by_state: dict[str, int] = {state: count for state, count in rows}
        stuck = conn.execute(
            f"SELECT id, state, step, phase, attempt, updated_at FROM saga_instances WHERE {STUCK} "
            "ORDER BY updated_at LIMIT 20", (stuck_after_s,)).fetchall()
        failed = conn.execute("SELECT id, reason, updated_at FROM saga_instances WHERE state = 'FAILED' "
                              "ORDER BY updated_at DESC LIMIT 20").fetchall()
        missed = conn.execute("SELECT kind, count(*), count(DISTINCT saga_id) FROM saga_events "
                              "WHERE kind IN ('timed_out', 'delayed') GROUP BY kind").fetchall()
    deadlines = {CAUSE[kind]: (events, sagas) for kind, events, sagas in missed}
    return SagaSummary(by_state, stuck, failed, deadlines)


def timeline(observer_url: str, saga: str) -> list[tuple[datetime, str, str | None, str | None, str | None]]:
    """Events of one saga, by saga id or by the business key its definition names, in time order (a choreographed saga's
    events reach the monitor from several topics, not necessarily in the order they happened)."""
    with psycopg.connect(observer_url) as conn:
        return conn.execute(
            "SELECT e.at, e.kind, e.step_name, e.action, e.detail FROM saga_events e JOIN saga_instances s "
            "ON s.id = e.saga_id WHERE s.id::text = %s OR s.business_key = %s ORDER BY e.at, e.id",
            (saga, saga)).fetchall()


@dataclass(frozen=True)
class SagaRow:
    id: str
    saga_type: str
    business_key: str | None
    state: str
    step: int
    phase: str
    attempt: int
    deadline: datetime | None   # the pending step's deadline, if one is pending
    created_at: datetime
    updated_at: datetime
    stuck: bool

    @property
    def age_s(self) -> float:
        return (datetime.now(self.created_at.tzinfo) - self.created_at).total_seconds()


COLUMNS = "id::text, saga_type, business_key, state, step, phase, attempt, deadline, created_at, updated_at"


def instances(observer_url: str, saga_type: str | None = None, state: str | None = None,
              older_than_s: float | None = None, stuck_after_s: float = STUCK_AFTER_S, limit: int = 100) -> list[SagaRow]:
    """Saga instances filtered by type, state and age (created longer ago than `older_than_s`),
    stuck ones first (stalest first), then the most recently changed."""
    where, params = ["true"], list[object]([stuck_after_s])
    if saga_type:
        where.append("saga_type = %s")
        params.append(saga_type)
    if state:
        where.append("state = %s")
        params.append(state)
    if older_than_s:
        where.append("created_at < now() - make_interval(secs => %s)")
        params.append(older_than_s)
    query = (f"SELECT {COLUMNS}, ({STUCK}) AS stuck FROM saga_instances WHERE {' AND '.join(where)} "
             f"ORDER BY stuck DESC, CASE WHEN {STUCK} THEN updated_at END, updated_at DESC LIMIT %s")
    with psycopg.connect(observer_url) as conn:
        rows = conn.execute(query, [*params, stuck_after_s, limit]).fetchall()
    return [SagaRow(*r) for r in rows]


def instance(observer_url: str, saga: str) -> SagaRow | None:
    """One saga by id or business key (the newest, if a key started several)."""
    with psycopg.connect(observer_url) as conn:
        row = conn.execute(f"SELECT {COLUMNS}, ({STUCK}) FROM saga_instances WHERE id::text = %s OR business_key = %s "
                           "ORDER BY created_at DESC LIMIT 1", (STUCK_AFTER_S, saga, saga)).fetchone()
    return SagaRow(*row) if row else None


def saga_types(observer_url: str) -> list[str]:
    with psycopg.connect(observer_url) as conn:
        return [r[0] for r in conn.execute("SELECT DISTINCT saga_type FROM saga_instances ORDER BY 1").fetchall()]
