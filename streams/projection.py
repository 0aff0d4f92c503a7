"""Pure core of replication: a change event -> the replica row it stands for (only the spec's
columns, renamed, with the change's source position), and last-write-wins inside a batch."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas.envelope import ChangeEvent, MalformedEvent
from streams.spec import DeletePolicy, ReplicationPair

SUPPORTED_OPS = frozenset({"c", "u", "d", "r"})
# What Debezium writes for a value it did not get (an unchanged TOASTed value under REPLICA
# IDENTITY DEFAULT): the text, and the same bytes base64-encoded for a bytea column.
UNAVAILABLE = frozenset({"__debezium_unavailable_value", "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="})


class SchemaChanged(Exception):
    """A column the pair replicates is not in a change of its source table: dropped or renamed at
    the source. The message is not malformed (Debezium wrote what the table now has), so
    dead-lettering it would skip a real change: the worker stops until the spec is fixed."""

    def __init__(self, pair: ReplicationPair, missing: list[str], unknown: list[str]) -> None:
        self.missing = missing
        hint = f"; columns the spec does not list: {', '.join(unknown)} (renamed?)" if unknown else ""
        super().__init__(f"pair {pair.name}: replicated column(s) {', '.join(missing)} of "
                         f"{pair.source.service}.{pair.source.table} missing from a change: dropped or renamed at "
                         f"the source{hint}. Fix the pair's columns in the replication spec (or restore the "
                         "column), then restart the worker: nothing was acknowledged or skipped")


@dataclass(frozen=True)
class ReplicaRow:
    key: tuple[Any, ...]        # target key values, in the order of pair.key
    values: tuple[Any, ...]     # target column values, in the order of pair.columns (None for a delete)
    position: int               # source LSN of the change
    deleted: bool
    source_ts_ms: int
    origin: Any = field(default=None, compare=False)  # the raw message, for dead-lettering one row
    source_system_id: str | None = None  # the source cluster that wrote the change
    # Commit order: the last commit LSN before the change (Debezium's sequence[0]); -1 marks a
    # snapshot read, which only fills a missing row and never replaces one (see order_key).
    commit_lsn: int = 0

    @property
    def order_key(self) -> tuple[int, int]:
        """(last commit LSN, change LSN) sorts streamed changes as they committed. A change's own
        LSN alone does not: a transaction open during a snapshot read commits later with a lower
        LSN. Snapshot reads sort first: any streamed change of the row is at least as new."""
        return (self.commit_lsn, self.position)


def project(pair: ReplicationPair, event: ChangeEvent, origin: Any = None) -> ReplicaRow:
    """Raises MalformedEvent (with the reason) for anything that cannot be applied."""
    src = event.source
    if src.table != pair.source.table or src.name != pair.source.service:
        raise MalformedEvent(f"event of {src.name}.{src.table} on the topic of {pair.source_topic}")
    if event.op not in SUPPORTED_OPS:
        raise MalformedEvent(f"operation {event.op!r} is not replicated (only c, u, d, r)")
    position = src.position
    if position is None:
        raise MalformedEvent("change without source.lsn (or snapshot sequence): its order cannot be guarded")
    row = event.row
    key = []
    for col in pair.key:
        if row.get(col) is None:
            raise MalformedEvent(f"key column {col!r} missing or null")
        key.append(row[col])
    if event.is_delete:
        values: tuple[Any, ...] = (None,) * len(pair.columns)
    else:
        missing = [c for c in pair.columns if c not in row]
        if missing:
            raise SchemaChanged(pair, missing, sorted(set(row) - set(pair.columns) - set(pair.key)))
        values = tuple(row[c] for c in pair.columns)
        placeholders = [c for c in pair.columns if isinstance(row[c], str) and row[c] in UNAVAILABLE]
        if placeholders:
            raise MalformedEvent(f"column(s) {placeholders} carry Debezium's unavailable-value placeholder, not "
                                 f"the value: {pair.source.service}.{pair.source.table} is not REPLICA IDENTITY "
                                 "FULL; make it FULL, then backfill the pair")
    commit_lsn = -1 if event.op == "r" else src.last_commit_lsn
    return ReplicaRow(tuple(key), values, position, event.is_delete, src.ts_ms, origin, event.source_system_id,
                      commit_lsn)


def latest_per_key(rows: Iterable[ReplicaRow]) -> list[ReplicaRow]:
    """Keep the newest change of each key (the highest order key; on a tie the later one)."""
    newest: dict[tuple[Any, ...], ReplicaRow] = {}
    for row in rows:
        current = newest.get(row.key)
        if current is None or row.order_key >= current.order_key:
            newest[row.key] = row
    return list(newest.values())


def should_apply(existing: tuple[int, int] | None, incoming: ReplicaRow) -> bool:
    """The guard the sink's SQL enforces: a snapshot read only fills a missing row; a streamed
    change replaces a row or marker only if it is strictly newer in commit order."""
    if existing is None:
        return True
    return incoming.commit_lsn >= 0 and existing < incoming.order_key


def keeps_data_on_delete(pair: ReplicationPair) -> bool:
    return pair.delete_policy is DeletePolicy.SOFT_DELETE


def source_identity_problem(recorded: str | None, rows: Iterable[ReplicaRow]) -> str | None:
    """Positions are only comparable within one source cluster: a rebuilt source starts its WAL
    again, and its changes would all look older than what the replica holds and be skipped."""
    seen = {r.source_system_id for r in rows if r.source_system_id and r.source_system_id != "unknown"}
    if len(seen) > 1:
        return f"one batch holds changes of several source clusters: {sorted(seen)}"
    if recorded is not None and seen and seen != {recorded}:
        return (f"the source was rebuilt: system identifier {seen.pop()} differs from {recorded}, the one this "
                "replica was filled from. Positions of the two cannot be compared; wipe the replica (and its "
                "cdc_replication_sources row) and backfill it")
    return None
