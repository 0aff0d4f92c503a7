"""One read model's batch loop body, free of Faust: fold each message (a malformed one is
dead-lettered with its reason), count into the tables at most once per position, then write the
touched keys' absolute values (and the records) to the database in one transaction, retried while
it is down. A backfilled source's messages pass its cut first (streams/read_models/cuts.py), read
from the database once, before the first batch. It returns only when the batch is written and its dead letters delivered, so the
caller may then acknowledge it."""
from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from schemas.envelope import MalformedEvent
from streams.deadletter import DeadLetter, RawMessage
from streams.durable import Database, run_durably
from streams.liveness import Liveness
from streams.read_models import counters, cuts
from streams.read_models.plugin import ReadModel
from streams.replicator import BatchOutcome, DeadLetters

log = logging.getLogger(__name__)


def skipped_ahead(messages: list[RawMessage], next_offsets: dict[tuple[str, int], int]) -> str | None:
    """Where a partition's messages jump past one that was never delivered (Faust can lose one in
    its recovery window: streams/commit_bookkeeping.py). A counter skips anything older than its
    key's last count, so that message, delivered later, would never count: the batch must not be
    folded. A repeat or a seek back (an offset below the next) is harmless. Updates `next_offsets`."""
    for m in messages:
        tp = (m.topic, m.partition)
        expected = next_offsets.get(tp)
        if expected is not None and m.offset > expected:
            return f"{m.topic}:{m.partition} delivered offset {m.offset} while {expected} was never delivered"
        next_offsets[tp] = max(expected or 0, m.offset + 1)
    return None


async def expect_first(messages: list[RawMessage], next_offsets: dict[tuple[str, int], int],
                       first_to_deliver: Callable[[tuple[str, int]], Awaitable[int]], name: str) -> None:
    """Tell `skipped_ahead` where each partition new to this actor must start: Faust commits over
    a single message lost at the head (faust-streaming #606), and a guard that only compares a
    message with the one before it cannot see a head (a CI run lost a click so after a kill -9)."""
    for tp in sorted({(m.topic, m.partition) for m in messages} - next_offsets.keys()):
        try:
            next_offsets[tp] = await first_to_deliver(tp)
        except Exception as exc:  # noqa: BLE001 - the broker away: this start goes unchecked, as before
            log.warning("read model %s: the group offset of %s:%s is unavailable (%s); its first "
                        "message is not checked", name, tp[0], tp[1], exc)


class ReadModelBatch:
    def __init__(self, model: ReadModel, tables: Mapping[str, MutableMapping[str, list[int]]], db: Database,
                 dead_letters: DeadLetters, liveness: Liveness | None = None,
                 source_cuts: dict[str, cuts.Cut] | None = None) -> None:
        self.model, self.tables, self.db = model, tables, db
        self.dead_letters, self.liveness = dead_letters, liveness
        self.cuts = source_cuts   # None: read before the first batch (the database may be down at start)

    async def _load_cuts(self) -> dict[str, cuts.Cut]:
        found: dict[str, cuts.Cut] = {}

        async def read(conn) -> None:
            found.update(await cuts.load_async(conn, self.model.name))

        await run_durably(f"read model {self.model.name} (its cuts)", self.db, read, self.liveness)
        return found

    def fold_all(self, messages: list[RawMessage], outcome: BatchOutcome) -> tuple[counters.Touched, list[tuple[Any, int]]]:
        touched: counters.Touched = {}
        records: list[tuple[Any, int]] = []
        for msg in messages:
            if self.cuts and not cuts.admitted(msg, self.cuts):
                continue   # the other copy of this row (snapshot read or streamed insert) is the one counted
            try:
                folded = self.model.fold(msg)
            except MalformedEvent as exc:
                outcome.dead.append(DeadLetter(msg, f"malformed: {exc}"))
                continue
            outcome.applied += counters.apply(self.tables, folded.counts, msg.offset, touched)
            records += [(r, msg.offset) for r in folded.records]
        return touched, records

    async def process(self, messages: list[RawMessage]) -> BatchOutcome:
        started = time.monotonic()
        outcome = BatchOutcome(received=len(messages))
        if self.cuts is None:
            self.cuts = await self._load_cuts()
        touched, records = self.fold_all(messages, outcome)
        values = counters.snapshot(self.tables, touched)
        if values or records:
            try:
                await run_durably(f"read model {self.model.name}", self.db,
                                  lambda conn: self.model.store.write(conn, values, records), self.liveness)
            except MalformedEvent as exc:   # the store refused data the fold accepted: a defect, not a message
                raise RuntimeError(f"read model {self.model.name}: the store refused a batch: {exc}") from exc
        if outcome.dead:
            await self.dead_letters.publish(outcome.dead)
        outcome.seconds = time.monotonic() - started
        return outcome
