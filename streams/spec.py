"""Replication specs: which source table feeds which target table, through which key mapping,
column allow-list (with renames) and delete policy. Data, validated at start-up: nothing is
replicated unless listed here, so sensitive columns never leave their owner."""
from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services import catalog

SPEC_FILE = Path(__file__).resolve().parent / "replication.json"
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
# Columns of every replica table that belong to the pipeline, not to the spec.
RESERVED_COLUMNS = frozenset({"cdc_position", "cdc_commit_lsn", "cdc_deleted", "cdc_source_ts", "cdc_applied_at"})
REPLICA_SUFFIX = "_replica"


class DeletePolicy(StrEnum):
    DELETE = "delete"            # data cleared, marker hidden from readers
    SOFT_DELETE = "soft_delete"  # last data kept, flagged deleted


class Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    service: str
    table: str

    @field_validator("table")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not IDENTIFIER.match(v):
            raise ValueError(f"{v!r} is not a plain lower-case SQL identifier")
        return v


class ReplicationPair(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    source: Endpoint
    target: Endpoint
    key: dict[str, str] = Field(min_length=1)       # source column -> target column
    columns: dict[str, str] = Field(min_length=1)   # allow-list: source column -> target column
    delete_policy: DeletePolicy = DeletePolicy.DELETE
    topic: str | None = None  # override of the source topic (benchmarks replay into a topic of their own)

    @model_validator(mode="after")
    def _check(self) -> ReplicationPair:
        for end in (self.source, self.target):
            try:
                catalog.get(end.service)
            except KeyError as exc:
                raise ValueError(str(exc.args[0])) from None
        if self.source.service == self.target.service:
            raise ValueError("source and target are the same service; replication crosses services")
        if self.source.table not in catalog.get(self.source.service).captured_tables:
            raise ValueError(f"{self.source.service}.{self.source.table} is not captured by its connector")
        targets = [*self.key.values(), *self.columns.values()]
        for col in [*self.key, *self.columns, *targets]:
            if not IDENTIFIER.match(col):
                raise ValueError(f"column {col!r} is not a plain lower-case SQL identifier")
        if len(set(targets)) != len(targets):
            raise ValueError(f"target columns repeat: {targets}")
        if RESERVED_COLUMNS & set(targets):
            raise ValueError(f"target columns {sorted(RESERVED_COLUMNS & set(targets))} are reserved for the pipeline")
        if set(self.key) & set(self.columns):
            raise ValueError("a key column is also listed in columns; keys are always replicated")
        for col in self.key.values():
            owner = self.source.service
            if not col.startswith(f"{owner}_"):
                raise ValueError(f"target key {col!r} must be a soft reference named <owner>_<entity>_id, "
                                 f"starting with {owner + '_'!r}")
        return self

    @property
    def source_topic(self) -> str:
        return self.topic or f"{self.source.service}.public.{self.source.table}"

    @property
    def replica_table(self) -> str:
        """Physical table (with delete markers); readers use the view named `target.table`."""
        return self.target.table + REPLICA_SUFFIX

    @property
    def group_id(self) -> str:
        """One consumer group per pair: a target that is down holds back only its own pair."""
        return f"cdc-replication-{self.name}"

    @property
    def dead_letter_topic(self) -> str:
        return f"dlq.replication.{self.name}"


class ReplicationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    pairs: tuple[ReplicationPair, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> ReplicationSpec:
        names = [p.name for p in self.pairs]
        if len(set(names)) != len(names):
            raise ValueError(f"pair names repeat: {names}")
        targets = [(p.target.service, p.target.table) for p in self.pairs]
        if len(set(targets)) != len(targets):
            raise ValueError("two pairs write the same target table")
        return self

    def pair(self, name: str) -> ReplicationPair:
        for p in self.pairs:
            if p.name == name:
                return p
        raise KeyError(f"no replication pair {name!r}; known: {', '.join(p.name for p in self.pairs)}")


class SpecError(ValueError):
    pass


def load(path: Path = SPEC_FILE) -> ReplicationSpec:
    """Read and validate the spec; SpecError carries the validator's message, per field."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecError(f"{path}: {exc}") from None
    try:
        return ReplicationSpec.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise SpecError(f"{path.name} is invalid:\n  " + "\n  ".join(lines)) from None
