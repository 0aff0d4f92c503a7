"""A read model as a domain declares it: the topics it folds, the counters it keeps (each a Faust
table with its own changelog topic, created at deploy), a pure fold from one message to the
counters and records it touches, and the store that writes them to the target service's database.

A source topic that captures a table may name a `TableBackfill`: when retention has deleted the
start of that topic, a rebuild refills it from the table (an incremental snapshot) instead of
refusing. A source without one must keep its whole history (deploy sets retention.ms=-1 on it).

Names derived here once: the consumer group and broker principal `cdc-readmodel-<name>`, the
dead-letter topic `dlq.readmodel.<name>`, the changelog topics `<group>-<table>-changelog`."""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg

from streams.deadletter import RawMessage

NAME = re.compile(r"^[a-z][a-z0-9-]{1,40}$")
PREFIX = "cdc-readmodel-"


@dataclass(frozen=True)
class Count:
    """One click of a counter: +1 to `key` of the counter table `table`, once per source position."""
    table: str
    key: str


@dataclass(frozen=True)
class Folded:
    counts: tuple[Count, ...] = ()
    records: tuple[Any, ...] = ()   # rows the store upserts as they are, guarded by the message's position


# counter table -> key -> [count, position of the last message counted]
Counters = Mapping[str, Mapping[str, list[int]]]


class Store(Protocol):
    """The read model's tables in its service's database."""
    tables: tuple[str, ...]   # wiped by a rebuild, compared before and after it

    async def write(self, conn: psycopg.AsyncConnection, counters: Counters,
                    records: list[tuple[Any, int]]) -> None:
        """Upsert absolute values (and records with their positions), each only if its position is newer."""

    def figures(self, conn: psycopg.Connection, limit: int) -> tuple[list[str], list[tuple]]:
        """A table for people: column names and rows."""


@dataclass(frozen=True)
class TableBackfill:
    """The table a source topic captures, and its key: an integer that only grows (a bigserial),
    so one value cuts the rows into those the snapshot brings and those the stream brings."""
    service: str
    table: str
    key: str = "id"

    def __post_init__(self) -> None:
        for part in (self.table, self.key):
            if not re.match(r"^[a-z_][a-z0-9_]*$", part):
                raise ValueError(f"backfill {self.service}.{self.table}.{self.key}: {part!r} is not a plain SQL name")


@dataclass(frozen=True)
class ReadModel:
    name: str
    service: str                       # whose database holds it
    sources: tuple[str, ...]           # topics folded
    counters: tuple[str, ...]          # Faust tables of counters
    fold: Callable[[RawMessage], Folded]   # raises MalformedEvent: the message goes to the dead-letter topic
    store: Store
    partitions: int = 3                # of the sources, and so of every changelog topic
    backfills: Mapping[str, TableBackfill] = field(default_factory=dict)   # source topic -> its table

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ValueError(f"read model name {self.name!r}: lower-case letters, digits and '-'")
        if not self.sources:
            raise ValueError(f"read model {self.name}: no source topic")
        if unknown := set(self.backfills) - set(self.sources):
            raise ValueError(f"read model {self.name}: backfill of {sorted(unknown)}, which it does not fold")

    @property
    def group_id(self) -> str:
        """Its Faust app id, consumer group and broker principal."""
        return PREFIX + self.name

    @property
    def dead_letter_topic(self) -> str:
        return f"dlq.readmodel.{self.name}"

    def changelog_topic(self, table: str) -> str:
        return f"{self.group_id}-{table}-changelog"   # Faust's own naming: <app id>-<table>-changelog

    @property
    def changelog_topics(self) -> list[str]:
        return [self.changelog_topic(t) for t in self.counters]

    @property
    def kept_forever(self) -> list[str]:
        """Sources a rebuild can only replay: their topics must never lose a message to retention."""
        return [t for t in self.sources if t not in self.backfills]

    @property
    def worker_name(self) -> str:
        """Its background worker's name (pid, log, /healthz port)."""
        return f"readmodel-{self.name}"
