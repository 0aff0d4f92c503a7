"""What a replication worker knows about itself: assigned partitions, progress, lag, and the
Prometheus metrics that export it. /healthz answers from this (Faust's / is always OK)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.commit_bookkeeping import HOLE_LISTENERS
from streams.replicator import BatchOutcome


@dataclass
class Health:
    healthy: bool
    reason: str
    details: dict = field(default_factory=dict)


class WorkerState:
    def __init__(self, pair: str, stall_after: float = 30.0) -> None:
        self.pair = pair
        self.stall_after = stall_after
        self.last_progress = time.monotonic()
        self.applied_offsets: dict[tuple[str, int], int] = {}
        self.registry = CollectorRegistry()
        labels = ["pair"]
        self.events = Counter("cdc_replication_events_total", "Change events consumed", labels, registry=self.registry)
        self.applied = Counter("cdc_replication_rows_applied_total", "Replica rows changed", labels, registry=self.registry)
        self.dead = Counter("cdc_replication_dead_letters_total", "Messages sent to the dead-letter topic", labels,
                            registry=self.registry)
        self.retries = Counter("cdc_replication_retries_total", "Retries of a batch (target down)", labels,
                               registry=self.registry)
        self.purged = Counter("cdc_replication_markers_purged_total", "Expired delete markers purged", labels,
                              registry=self.registry)
        self.lag = Gauge("cdc_replication_lag_messages", "Messages behind the end of the source topic", labels,
                         registry=self.registry)
        self.holes = Counter("cdc_replication_commit_holes_refilled_total", "Partitions sought back because a message "
                             "never reached the worker and held its commit (streams/commit_bookkeeping.py)", labels,
                             registry=self.registry)
        self.holes.labels(pair)
        HOLE_LISTENERS.append(lambda tp: self.holes.labels(self.pair).inc())
        self.latency = Histogram("cdc_replication_apply_seconds", "Time to apply one batch", labels,
                                 registry=self.registry, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

    def record(self, outcome: BatchOutcome, last_offsets: dict[tuple[str, int], int]) -> None:
        self.last_progress = time.monotonic()
        self.applied_offsets.update(last_offsets)
        self.events.labels(self.pair).inc(outcome.received)
        self.applied.labels(self.pair).inc(outcome.applied)
        self.dead.labels(self.pair).inc(len(outcome.dead))
        self.latency.labels(self.pair).observe(outcome.seconds)

    def fetched(self, first_offsets: dict[tuple[str, int], int]) -> None:
        """A batch in hand, first offset per partition. On a partition this process has applied
        nothing on yet, everything before that offset was done (the group's committed offset), so
        the lag counts from it: the consumer's position has already moved past the batch, and a
        worker stuck on its very first batch would otherwise report no lag and stay healthy."""
        for tp, offset in first_offsets.items():
            self.applied_offsets.setdefault(tp, offset - 1)

    def lag_of(self, highwaters: dict[tuple[str, int], int], positions: dict[tuple[str, int], int]) -> int:
        """highwater = next offset to be written. Next to apply: after the last applied offset, or
        where the consumer stands for a partition this process has applied nothing on yet."""
        lag = 0
        for tp, high in highwaters.items():
            applied = self.applied_offsets.get(tp)
            nxt = applied + 1 if applied is not None else positions.get(tp, high)
            lag += max(0, high - nxt)
        return lag

    def evaluate(self, assigned: set[tuple[str, int]], highwaters: dict[tuple[str, int], int],
                 positions: dict[tuple[str, int], int] | None = None) -> Health:
        lag = self.lag_of({tp: h for tp, h in highwaters.items() if tp in assigned}, positions or {})
        self.lag.labels(self.pair).set(lag)
        details = {"pair": self.pair, "assigned": sorted(f"{t}:{p}" for t, p in assigned), "lag": lag,
                   "seconds_since_progress": round(time.monotonic() - self.last_progress, 1)}
        if not assigned:
            return Health(False, "no partitions assigned", details)
        if lag > 0 and time.monotonic() - self.last_progress > self.stall_after:
            return Health(False, f"lag {lag} and no progress for {self.stall_after:.0f}s", details)
        return Health(True, "ok", details)
