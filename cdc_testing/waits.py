"""Waiting for what a service test is about: a replica that converged, a saga that reached a
step or ended, a row that arrived. Each polls with a deadline and fails saying what it expected
and what it saw last."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from cdc_testing.polling import poll

ENDED = ("COMPLETED", "COMPENSATED", "FAILED")


@dataclass(frozen=True)
class SagaView:
    """One saga instance as its coordinator's store holds it."""
    state: str
    step: int
    phase: str
    attempt: int
    reason: str | None


def query_one(url: str, sql: str, params: tuple = ()) -> tuple | None:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchone()


def wait_row(url: str, sql: str, params: tuple = (), expected: tuple | None = None, timeout: float = 90,
             what: str = "") -> tuple:
    """The first row `sql` returns, once there is one (equal to `expected` when given)."""
    row = poll(lambda: query_one(url, sql, params),
               lambda r: r is not None and (expected is None or tuple(r) == tuple(expected)), timeout,
               what or f"{sql} {params} to return {expected if expected is not None else 'a row'}")
    assert row is not None
    return row


def saga(env: dict[str, str], saga_type: str, business_key: Any) -> SagaView | None:
    """The saga of this type (a definition's name, any version) and business key, if it exists yet.
    Both modes record their sagas in the coordinator's store (ORCHESTRATOR_OBSERVER_URL)."""
    row = query_one(env["ORCHESTRATOR_OBSERVER_URL"],
                    "SELECT state, step, phase, attempt, reason FROM saga_instances "
                    "WHERE business_key = %s AND split_part(saga_type, '/', 1) = %s ORDER BY created_at DESC LIMIT 1",
                    (str(business_key), saga_type))
    return SagaView(*row) if row else None


def wait_saga(env: dict[str, str], saga_type: str, business_key: Any, until, expected: str,
              timeout: float = 120) -> SagaView:
    """Poll the saga until `until(view)` holds (the view is None while it does not exist yet)."""
    view = poll(lambda: saga(env, saga_type, business_key), lambda v: v is not None and until(v), timeout,
                f"{saga_type} saga {business_key}: {expected}")
    assert view is not None
    return view


def wait_saga_ended(env: dict[str, str], saga_type: str, business_key: Any, timeout: float = 120) -> SagaView:
    """The saga once it COMPLETED, was COMPENSATED or FAILED."""
    return wait_saga(env, saga_type, business_key, lambda v: v.state in ENDED, f"ended ({'/'.join(ENDED)})", timeout)


def wait_replicated(env: dict[str, str], pair_names: list[str] | None = None, timeout: float = 120) -> None:
    """Every named replication pair (all of the enabled domains' by default) has converged: the
    replica holds what its source held when the wait began (rows and checksums, `cdc observe`'s figures)."""
    from observe.replication import wait_converged
    from streams import spec as spec_mod

    spec = spec_mod.load()
    pairs = [spec.pair(n) for n in pair_names] if pair_names else list(spec.pairs)
    reports = wait_converged(pairs, env, timeout)
    bad = [r for r in reports if not r.converged]
    assert not bad, f"after {timeout:.0f}s expected every replica converged; not converged: " + "; ".join(
        f"{r.pair}: rows {r.source_rows}/{r.replica_rows}, checksums {'match' if r.checksums_match else 'differ'}, "
        f"consumer lag {r.consumer_lag}, captured {r.captured}" for r in bad)
