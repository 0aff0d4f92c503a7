"""A person's decision on a FAILED saga, for the CLI and the console alike: an orchestrated one is
taken over on the orchestrator's store (streams/sagas/orchestrator.take_over); a choreographed
one at the participant whose watch quarantined it (streams/sagas/choreography_runtime.take_over),
the monitor following from that participant's event. Both are recorded in the audit topic."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg

from operate import audit
from services.registry import current
from stack.kafka_client import OPERATOR, access
from streams.sagas import choreography_runtime, orchestrator
from streams.sagas.enabled import enabled
from streams.sagas.machine import NotRetryable

ACTIONS = ("retry", "resolve")
CHOREOGRAPHED = "/choreographed"   # the suffix of a choreographed saga's type in the saga store


@dataclass(frozen=True)
class Decision:
    saga_id: str
    before: str        # the saga's state when the person took over
    after: str         # its state after (a choreographed saga's monitor records it as it reads the event)
    reason: str        # why it had FAILED
    detail: str        # what happens now


async def _orchestrated(url: str, saga: str, action: str, who: str, why: str, scale: float) -> Decision:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        before, after = await orchestrator.take_over(conn, enabled(scale), saga, action, who, why, time.time())
    detail = f"compensating step {after.step} again" if action == "retry" else "closed by hand"
    return Decision(after.saga_id, before.status.value, after.status.value, before.reason or "", detail)


def _choreographed_saga(store_url: str, saga: str) -> tuple[str, str, str] | None:
    """(id, saga type, reason) of the one FAILED choreographed saga with this id or business key."""
    with psycopg.connect(store_url) as conn:
        rows = conn.execute("SELECT id::text, saga_type, coalesce(reason, ''), state FROM saga_instances "
                            "WHERE (id::text = %s OR business_key = %s) AND saga_type LIKE %s",
                            (saga, saga, f"%{CHOREOGRAPHED}")).fetchall()
    if not rows:
        return None
    if len(rows) > 1:
        raise NotRetryable(f"{len(rows)} choreographed sagas have the key {saga}: name one by id {[r[0] for r in rows]}")
    saga_id, saga_type, reason, state = rows[0]
    if state != "FAILED":
        raise NotRetryable(f"saga {saga_id} is {state}: only a FAILED saga is taken over")
    return saga_id, saga_type, reason


async def _choreographed(env: Mapping[str, str], saga_id: str, saga_type: str, action: str, who: str, why: str,
                         scale: float) -> str:
    sagas = enabled(scale)
    defn = sagas.definition(saga_type.removesuffix(CHOREOGRAPHED))
    for me in dict.fromkeys(s.participant for s in defn.steps):  # the watcher is one of them
        url = env[f"{current().service(me).env_prefix}_DATABASE_URL"]
        async with await psycopg.AsyncConnection.connect(url) as conn:
            step = await choreography_runtime.take_over(conn, sagas, me, saga_id, action, who, why, time.time())
        if step is not None:
            return f"{me} asks the compensation of {step} again" if action == "retry" else f"{me} closed its watch of {step}"
    raise NotRetryable(f"saga {saga_id}: no participant holds a FAILED watch of it (taken over already?)")


def take_over(env: Mapping[str, str], saga: str, action: str, who: str, why: str,
              timeout_scale: float = 1.0) -> Decision:
    """Raises machine.NotRetryable (with the reason) when the saga's state does not allow it."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}: one of {ACTIONS}")
    if not why.strip():
        raise ValueError("a reason (why) is required")
    chosen = _choreographed_saga(env["ORCHESTRATOR_OBSERVER_URL"], saga)
    if chosen is None:
        d = asyncio.run(_orchestrated(env["ORCHESTRATOR_DATABASE_URL"], saga, action, who, why, timeout_scale))
    else:
        saga_id, saga_type, reason = chosen
        detail = asyncio.run(_choreographed(env, saga_id, saga_type, action, who, why, timeout_scale))
        d = Decision(saga_id, "FAILED", "COMPENSATING" if action == "retry" else "RESOLVED", reason, detail)
    audit.record(access(env, OPERATOR), [audit.Action(f"saga-{action}", f"saga:{d.saga_id}", d.reason, d.before,
                                                      d.after, who, why, time.time())])
    return d
