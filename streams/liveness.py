"""Is the worker still moving through what it was assigned? A Faust consumer can hold its
partitions and stop fetching after a rebalance (faust-streaming#629, #523): /healthz then looks
fine and a saga step just times out. The watchdog compares the broker's end offsets with what
the worker acknowledged and, when a partition has been behind without progress for too long,
restarts the process in place (offsets are committed only after their effect is durable, so
a restart redelivers, and idempotent handling makes that harmless). A worker waiting on purpose
(retrying a database that is down) is not stalled."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition

from stack.kafka_client import KafkaAccess

log = logging.getLogger(__name__)
TP = tuple[str, int]


@dataclass
class Liveness:
    stall_after: float
    acked: dict[TP, int] = field(default_factory=dict)      # last acknowledged offset per partition
    moved_at: dict[TP, float] = field(default_factory=dict)
    waiting: int = 0                                        # actors retrying a database on purpose
    commit_seen: dict[TP, tuple[int, float]] = field(default_factory=dict)   # group offset, since when

    def acknowledged(self, offsets: dict[TP, int], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for tp, offset in offsets.items():
            self.acked[tp] = max(offset, self.acked.get(tp, -1))
            self.moved_at[tp] = now

    @contextlib.contextmanager
    def retrying(self) -> Iterator[None]:
        self.waiting += 1
        try:
            yield
        finally:
            self.waiting -= 1

    def behind(self, ends: dict[TP, int], starts: dict[TP, int]) -> dict[TP, int]:
        """Messages between the next one to handle and the end, per partition. Next to handle:
        after the last acknowledged one, or where the group stands (committed offset, else the log start)."""
        out = {}
        for tp, end in ends.items():
            nxt = max(self.acked[tp] + 1, starts.get(tp, 0)) if tp in self.acked else starts.get(tp, end)
            out[tp] = max(0, end - nxt)
        return out

    def uncommitted(self, starts: dict[TP, int], now: float) -> list[str]:
        """Partitions whose group offset has stayed below what this worker acknowledged for longer
        than stall_after. Faust commits acked offsets every second; one that never follows them
        (its acks lost in a recovery window, commit_bookkeeping.py) would leave the partition
        behind for good while the worker looks busy and caught up. A restart redelivers from the
        group's offset, and the handlers apply each message once by its position."""
        found = []
        for tp, at in starts.items():
            if tp not in self.acked or at > self.acked[tp]:
                self.commit_seen.pop(tp, None)   # every acknowledged offset is committed
                continue
            seen, since = self.commit_seen.get(tp, (None, now))
            if seen != at:
                self.commit_seen[tp] = (at, now)   # the commit moved: the clock starts again
            elif now - since > self.stall_after:
                found.append(f"{tp[0]}:{tp[1]} acknowledged up to {self.acked[tp]} but its group offset "
                             f"stayed at {at} for {now - since:.0f}s")
        return found

    def stalled(self, ends: dict[TP, int], starts: dict[TP, int], now: float | None = None) -> list[str]:
        """Partitions (of those assigned now = the keys of `ends`) behind their end with no
        acknowledgement for longer than stall_after. Forgets partitions no longer assigned."""
        now = time.monotonic() if now is None else now
        for book in (self.acked, self.moved_at, self.commit_seen):
            for tp in [tp for tp in book if tp not in ends]:
                del book[tp]
        found = self.uncommitted(starts, now)
        for tp, behind in self.behind(ends, starts).items():
            if behind <= 0 or self.waiting:
                self.moved_at[tp] = now  # caught up, or waiting on purpose: the clock starts again
                continue
            since = now - self.moved_at.setdefault(tp, now)
            if since > self.stall_after:
                found.append(f"{tp[0]}:{tp[1]} is {behind} behind with no progress for {since:.0f}s")
        return found


class GroupOffsets:
    """End offsets and where the consumer group stands, from the broker (not from the Faust
    consumer, whose own view is what may be stuck). A plain client that never joins the group."""

    def __init__(self, app, kafka: KafkaAccess, topics: frozenset[str] | None = None) -> None:
        self.app = app
        self.topics = topics   # only these (a read model's sources, not its tables' changelogs); None: every one
        self.client = Consumer(kafka.config(**{"group.id": app.conf.id, "enable.auto.commit": False}))
        self.lock = asyncio.Lock()

    def _read(self, assigned: list[TP]) -> tuple[dict[TP, int], dict[TP, int]]:
        tps = [TopicPartition(t, p) for t, p in assigned]
        marks = {tp: self.client.get_watermark_offsets(TopicPartition(*tp), timeout=5) for tp in assigned}
        committed = {(c.topic, c.partition): c.offset for c in self.client.committed(tps, timeout=5)}
        ends = {tp: high for tp, (_, high) in marks.items()}
        starts = {tp: committed[tp] if committed.get(tp, -1) >= 0 else low for tp, (low, _) in marks.items()}
        return ends, starts

    def _first_to_deliver(self, tp: TP) -> int:
        low, _ = self.client.get_watermark_offsets(TopicPartition(*tp), timeout=5)
        [c] = self.client.committed([TopicPartition(*tp)], timeout=5)
        return max(c.offset, low) if c.offset >= 0 else low

    async def first_to_deliver(self, tp: TP) -> int:
        """The offset a fresh owner of `tp` must be given first: the group's committed offset (or
        the log start, when there is none or retention deleted it). Source offsets have no holes
        (no transactions, no compaction), so a first message above it means one was lost."""
        async with self.lock:
            return await asyncio.to_thread(self._first_to_deliver, tp)

    async def read(self) -> tuple[dict[TP, int], dict[TP, int]]:
        """(end offset, where the group stands) of each partition assigned to this worker."""
        consumer = self.app.consumer
        assigned = sorted((tp.topic, tp.partition) for tp in consumer.assignment()
                          if self.topics is None or tp.topic in self.topics) if consumer else []
        if not assigned:
            return {}, {}
        async with self.lock:
            return await asyncio.to_thread(self._read, assigned)


def restart_in_place(reason: str) -> None:
    """Replace this process with a fresh copy of itself (same pid, same arguments, same logs)."""
    log.critical("stalled: %s. Restarting the worker in place.", reason)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)


def consumer_view(consumer) -> str:
    """Faust's own bookkeeping per partition (committed, read, first acks, gaps, in flight): what
    tells a lost message from a lost ack when a stall is reported. Private attributes, read only."""
    parts = []
    in_flight: dict = {}
    for message in list(getattr(consumer, "_unacked_messages", ())):
        in_flight.setdefault(message.tp, []).append(message.offset)
    for tp in sorted(consumer.assignment() if consumer else ()):
        acked = list(getattr(consumer, "_acked", {}).get(tp, ()))
        parts.append(f"{tp.topic}:{tp.partition} committed={getattr(consumer, '_committed_offset', {}).get(tp)} "
                     f"read={getattr(consumer, '_read_offset', {}).get(tp)} acked={acked[:5]}{'...' if len(acked) > 5 else ''} "
                     f"gaps={list(getattr(consumer, '_gap', {}).get(tp, ()))[:3]} in_flight={sorted(in_flight.get(tp, []))[:5]}")
    return "; ".join(parts) or "no assignment"


def install_watchdog(app, liveness: Liveness, kafka: KafkaAccess, topics: frozenset[str] | None = None) -> GroupOffsets:
    """A Faust timer that restarts the process when a partition (of `topics`, default every one assigned) stalls."""
    offsets = GroupOffsets(app, kafka, topics)
    interval = max(1.0, min(10.0, liveness.stall_after / 4))

    @app.timer(interval=interval)
    async def watchdog() -> None:
        try:
            ends, starts = await offsets.read()
        except Exception as exc:  # noqa: BLE001 - the broker may be away; the next tick tries again
            log.info("watchdog: offsets unavailable (%s)", exc)
            liveness.commit_seen.clear()   # no commit could follow the acks either: their clock starts again
            return
        stalled = liveness.stalled(ends, starts)
        if stalled:
            log.warning("watchdog: the Faust consumer's view before the restart: %s", consumer_view(app.consumer))
            restart_in_place("; ".join(stalled))

    return offsets
