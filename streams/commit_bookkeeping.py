"""Faust's acknowledgement bookkeeping, made safe across a seek back to the committed offsets.

Faust commits the first run of consecutive acked offsets of a partition. A seek back to the
committed offsets (table recovery completing, a rebalance) makes every message after them come
again, but Faust keeps the acks of their first delivery: the second delivery's acks then sit beside
them as duplicates, or behind a run that was already cut off, and the run never reaches them
again. The partition's commits stop for good while its messages keep being processed (seen here:
a read model worker that started with a backlog committed 308 of 576 and stayed there; faust-streaming
issues #596 and robinhood/faust#625). Its lag then grows without bound and every restart replays
everything since.

Also seen, in the same window (recovery resumes the source partitions before it seeks them): a
message that never reaches the agent while the ones after it do. Nothing acks it, nothing
delivers it again, and the commit waits behind it for ever; or, when it is a single message at
the head, Faust commits over it (faust-streaming #606) and it is lost: a read model missed 3 clicks
so after a kill -9 restart.

The fix: after a seek, forget the acks of the sought partitions (every message from the committed
offset on is delivered again and acked again); count each acked offset once; and when a
partition's commit stays behind a hole that no message in flight can fill (checked twice, a few
seconds apart, so a commit under way is not mistaken for one), seek it back to its committed offset:
the hole and what follows are delivered again (the workers apply each change once by its source
position), nothing is skipped."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, MutableMapping, MutableSequence, Sequence
from functools import partial
from typing import Any

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service

log = logging.getLogger(__name__)
HOLE_LISTENERS: list[Callable[[TP], None]] = []   # told of each hole refilled (the workers' /metrics)
HOLE_CHECK_S = 3.0    # a hole must outlast two checks this far apart before the partition is sought back

SCHEME = "cdcfaust"   # broker URL scheme of Faust's own drain with these commits (streams/faust_app.py)


def forget_acks(acked: MutableMapping[TP, Any], acked_index: MutableMapping[TP, Any], tps: Iterable[TP]) -> None:
    """Drop what was acked on `tps` before a seek back: those messages are delivered again."""
    for tp in tps:
        acked.pop(tp, None)
        acked_index.pop(tp, None)


def deduplicated(acked: MutableSequence[int]) -> None:
    """Each offset once, in order (a run of consecutive numbers ends at a repeated one)."""
    acked[:] = sorted(set(acked))


def head_hole(start: int | None, offsets: Sequence[int], covered: Callable[[int, int], bool]) -> bool:
    """Whether offsets from `start` (the committed offset) up to the first acked one are neither
    acked nor a known gap (compaction, transaction markers)."""
    return bool(offsets) and start is not None and min(offsets) > start and not covered(start, min(offsets))


def lost_holes(committed: Mapping[TP, int | None], acked: Mapping[TP, Sequence[int]],
               in_flight: Mapping[TP, set[int]], covered: Callable[[TP, int, int], bool]) -> dict[TP, int]:
    """Partitions whose commit cannot advance: acks above the committed offset, and none of the
    offsets between them acked, a known gap, or in flight. Returns where to seek each one back to."""
    holes = {}
    for tp, offsets in acked.items():
        start = committed.get(tp)
        if start is None or not head_hole(start, offsets, partial(covered, tp)):
            continue
        if not any(start <= o < min(offsets) for o in in_flight.get(tp, ())):
            holes[tp] = start
    return holes


class SafeCommitsConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose acks start afresh at every seek to the committed offsets,
    and whose partitions are sought back when a lost message holds their commit."""

    _suspect_holes: dict[TP, int] | None = None

    async def perform_seek(self) -> None:
        sought = list(self.assignment())
        await super().perform_seek()
        forget_acks(self._acked, self._acked_index, sought)

    def _gap_covers(self, tp: TP, start: int, end: int) -> bool:
        covered: set[int] = set()
        for interval in self._gap[tp].overlap(start, end):
            covered.update(range(interval.begin, interval.end))
        return all(o in covered for o in range(start, end))

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        if acked:
            deduplicated(acked)
        return super()._new_offset(tp)

    @Service.task
    async def _refill_lost_holes(self) -> None:
        await self.sleep(HOLE_CHECK_S)
        async for _ in self.itertimer(HOLE_CHECK_S, name="lost-holes"):
            if self.app.rebalancing or not self.app.flow_control.is_active():
                self._suspect_holes = {}
                continue
            await self.refill_lost_holes()

    async def refill_lost_holes(self) -> None:
        in_flight: dict[TP, set[int]] = {}
        for message in list(self._unacked_messages):
            in_flight.setdefault(message.tp, set()).add(message.offset)
        assigned = self.assignment()
        holes = {tp: at for tp, at in lost_holes(self._committed_offset, self._acked, in_flight, self._gap_covers).items()
                 if tp in assigned}
        before, self._suspect_holes = self._suspect_holes or {}, {}
        for tp, at in holes.items():
            if before.get(tp) != at:
                self._suspect_holes[tp] = at   # seen once: a commit may be under way
                continue
            log.warning("commit of %s:%s stuck at %s behind messages that never reached the agent "
                        "(first acked after it: %s): seeking back to %s to deliver them again",
                        tp.topic, tp.partition, at, min(self._acked[tp]), at)
            await self.seek(tp, at)
            forget_acks(self._acked, self._acked_index, [tp])
            for listener in HOLE_LISTENERS:
                listener(tp)


class Transport(faust_aiokafka.Transport):
    Consumer = SafeCommitsConsumer


TRANSPORTS.aliases.setdefault(SCHEME, f"{__name__}:Transport")
