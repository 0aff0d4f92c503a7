"""Debezium's native change-event envelope (JSON converter, schemas disabled), as the
PostgreSQL connector writes it for row tables: before/after/source/op."""
from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class MalformedEvent(ValueError):
    """A message that is not a change event we can apply; the reason goes to the dead-letter topic."""


class SourceInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    connector: str
    name: str  # topic.prefix: the service
    db: str
    schema_: str = Field(alias="schema")
    table: str
    lsn: int | None = None  # position of this change in the source's WAL
    tx_id: int | None = Field(default=None, alias="txId")
    ts_ms: int  # commit time at the source
    snapshot: str | None = None  # "true"/"first"/"last"/"incremental" during snapshots, else "false"
    sequence: str | None = None  # JSON list [last commit LSN, LSN] as strings

    @property
    def last_commit_lsn(self) -> int:
        """First element of `sequence`: with the change's own lsn it orders every streamed event
        totally (Debezium added it for this, DBZ-2911); 0 when absent."""
        if not self.sequence:
            return 0
        try:
            first = orjson.loads(self.sequence)[0]
        except (orjson.JSONDecodeError, TypeError, ValueError, IndexError):
            return 0
        return int(first) if first is not None else 0

    @property
    def position(self) -> int | None:
        """Where this change sits in the source's history. Incremental-snapshot reads carry no
        lsn; their `sequence` holds the stream position at which the chunk was emitted, which
        is past every change the read row could be older than (Debezium drops a read whose key
        changed inside the snapshot window)."""
        if self.lsn is not None:
            return self.lsn
        if self.snapshot == "incremental" and self.sequence:
            try:
                values = [int(v) for v in orjson.loads(self.sequence) if v is not None]
            except (orjson.JSONDecodeError, TypeError, ValueError):
                return None
            return max(values) if values else None
        return None


Op = Literal["c", "u", "d", "r", "t", "m"]


class ChangeEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    source: SourceInfo
    op: Op
    ts_ms: int | None = None  # when Debezium processed it
    source_system_id: str | None = None  # stamped by the connector (InsertField): which cluster wrote it

    @property
    def is_delete(self) -> bool:
        return self.op == "d"

    @property
    def row(self) -> dict[str, Any]:
        """The row state the event stands for: the new row, or for a delete the old row's key."""
        row = self.before if self.op == "d" else self.after
        if row is None:
            raise MalformedEvent(f"op {self.op!r} without {'before' if self.op == 'd' else 'after'}")
        return row


class Tombstone(BaseModel):
    """The null-valued message Debezium sends after a delete so compaction can drop the key."""

    key: dict[str, Any]


def _json(raw: bytes, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedEvent(f"{what} is not JSON: {exc}") from None


def parse_key(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        raise MalformedEvent("message has no key (row events are keyed by primary key)")
    key = _json(raw, "key")
    if isinstance(key, dict) and "schema" in key and "payload" in key:
        key = key["payload"]  # a converter with schemas enabled
    if not isinstance(key, dict) or not key:
        raise MalformedEvent(f"key is not an object of primary-key columns: {raw[:200]!r}")
    return key


def parse_change(key: bytes | None, value: bytes | None) -> ChangeEvent | Tombstone:
    """Raw Kafka key/value -> a change event or a tombstone; MalformedEvent says why not."""
    parsed_key = parse_key(key)
    if value is None:
        return Tombstone(key=parsed_key)
    doc = _json(value, "value")
    if isinstance(doc, dict) and "schema" in doc and "payload" in doc:
        doc = doc["payload"]  # tolerate a converter with schemas enabled
    try:
        return ChangeEvent.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MalformedEvent(f"not a Debezium change event: {where}: {first['msg']}") from None
