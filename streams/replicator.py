"""One replication pair's batch loop body, free of Faust: parse, project, keep the newest per
key, apply in one transaction (retrying while the database is down), dead-letter what cannot
be applied. It returns only when every message of the batch is applied or dead-lettered, so the
caller may then acknowledge the batch; it raises FatalApplyError when that can never happen."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from schemas.envelope import ChangeEvent, MalformedEvent, parse_change
from streams.deadletter import DeadLetter, RawMessage
from streams.errors import ErrorKind, classify
from streams.projection import ReplicaRow, SchemaChanged, latest_per_key, project
from streams.spec import ReplicationPair

log = logging.getLogger(__name__)


class FatalApplyError(RuntimeError):
    """The batch cannot be applied by retrying (wrong deployment): stop without acknowledging."""


class Sink(Protocol):
    async def apply(self, rows: list[ReplicaRow]) -> int: ...
    async def apply_each(self, rows: list[ReplicaRow]) -> tuple[int, list[tuple[ReplicaRow, str]]]: ...


class DeadLetters(Protocol):
    async def publish(self, letters: list[DeadLetter]) -> None: ...


@dataclass
class BatchOutcome:
    received: int = 0
    applied: int = 0           # rows that changed (a replayed or older change changes nothing)
    skipped_tombstones: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    retries: int = 0
    seconds: float = 0.0


@dataclass
class Backoff:
    first: float = 0.2
    maximum: float = 5.0

    def delays(self):
        delay = self.first
        while True:
            yield delay
            delay = min(delay * 2, self.maximum)


class PairReplicator:
    def __init__(self, pair: ReplicationPair, sink: Sink, dead_letters: DeadLetters,
                 backoff: Backoff | None = None, on_retry=None, waiting=None) -> None:
        self.pair = pair
        self.on_retry = on_retry or (lambda: None)  # live signal (metrics) while a batch waits
        # a context manager around each back-off sleep: waiting on purpose is not a stall (streams/liveness.py)
        self.waiting = waiting or contextlib.nullcontext
        self.sink = sink
        self.dead_letters = dead_letters
        self.backoff = backoff or Backoff()

    def _project_all(self, messages: list[RawMessage], outcome: BatchOutcome) -> list[ReplicaRow]:
        rows: list[ReplicaRow] = []
        for msg in messages:
            try:
                event = parse_change(msg.key, msg.value)
                if not isinstance(event, ChangeEvent):
                    outcome.skipped_tombstones += 1  # the delete event before it did the work
                    continue
                rows.append(project(self.pair, event, origin=msg))
            except MalformedEvent as exc:
                outcome.dead.append(DeadLetter(msg, f"malformed: {exc}"))
            except SchemaChanged as exc:  # a real change the spec no longer fits: stop, skip nothing
                raise FatalApplyError(f"{exc} (at {msg.topic}[{msg.partition}]@{msg.offset})") from exc
        return rows

    async def _sleep(self, delay: float) -> None:
        with self.waiting():
            await asyncio.sleep(delay)

    async def process(self, messages: list[RawMessage]) -> BatchOutcome:
        started = time.monotonic()
        outcome = BatchOutcome(received=len(messages))
        batch = latest_per_key(self._project_all(messages, outcome))
        if batch:
            await self._apply(batch, outcome)
        if outcome.dead:
            await self._retry("dead-letter publish", lambda: self.dead_letters.publish(outcome.dead), outcome)
        outcome.seconds = time.monotonic() - started
        return outcome

    async def _apply(self, batch: list[ReplicaRow], outcome: BatchOutcome) -> None:
        delays = self.backoff.delays()
        while True:
            try:
                outcome.applied += await self.sink.apply(batch)
                return
            except Exception as exc:  # noqa: BLE001 - every error is classified, none escapes unhandled
                kind = classify(exc)
                if kind is ErrorKind.FATAL:
                    raise FatalApplyError(f"{self.pair.name}: {type(exc).__name__}: {exc}") from exc
                if kind is ErrorKind.TRANSIENT:
                    outcome.retries += 1
                    self.on_retry()
                    delay = next(delays)
                    log.warning("%s: target database unavailable (%s); retrying in %.1fs", self.pair.name, exc, delay)
                    await self._sleep(delay)
                    continue
            # Some rows are bad: apply the others one by one, dead-letter the bad ones.
            try:
                applied, failed = await self.sink.apply_each(batch)
            except Exception as exc:  # noqa: BLE001
                if classify(exc) is ErrorKind.FATAL:
                    raise FatalApplyError(f"{self.pair.name}: {type(exc).__name__}: {exc}") from exc
                outcome.retries += 1
                self.on_retry()
                await self._sleep(next(delays))
                continue
            outcome.applied += applied
            outcome.dead.extend(DeadLetter(row.origin, f"rejected by {self.pair.target.service}: {reason}")
                                for row, reason in failed)
            return

    async def _retry(self, what: str, action, outcome: BatchOutcome) -> None:
        delays = self.backoff.delays()
        while True:
            try:
                await action()
                return
            except Exception as exc:  # noqa: BLE001 - the batch must not be acknowledged before this succeeds
                outcome.retries += 1
                self.on_retry()
                delay = next(delays)
                log.warning("%s: %s failed (%s); retrying in %.1fs", self.pair.name, what, exc, delay)
                await self._sleep(delay)
