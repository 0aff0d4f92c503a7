"""A person's decision on a FAILED saga, for the CLI and the console alike: run it on the
orchestrator's store (streams/sagas/orchestrator.take_over), then record it in the audit topic."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import psycopg

from operate import audit
from stack.kafka_client import OPERATOR, access
from streams.sagas import orchestrator
from streams.sagas.enabled import enabled
from streams.sagas.machine import SagaState

ACTIONS = ("retry", "resolve")


async def _take_over(url: str, saga: str, action: str, who: str, why: str, scale: float):
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return await orchestrator.take_over(conn, enabled(scale), saga, action, who, why, time.time())


def take_over(env: Mapping[str, str], saga: str, action: str, who: str, why: str,
              timeout_scale: float = 1.0) -> tuple[SagaState, SagaState]:
    """Raises machine.NotRetryable (with the reason) when the saga's state does not allow it."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}: one of {ACTIONS}")
    if not why.strip():
        raise ValueError("a reason (why) is required")
    before, after = asyncio.run(_take_over(env["ORCHESTRATOR_DATABASE_URL"], saga, action, who, why, timeout_scale))
    audit.record(access(env, OPERATOR), [audit.Action(f"saga-{action}", f"saga:{after.saga_id}", before.reason or "",
                                                      before.status.value, after.status.value, who, why, time.time())])
    return before, after
