"""Replication specs: which source table feeds which target table, through which key mapping,
column allow-list (with renames, and the replica's SQL types) and delete policy. Data, validated
at start-up: nothing is replicated unless listed here, and a column its service declares
private is refused, so sensitive columns never leave their owner. Each domain keeps its pairs
in its own file (`Domain.replication`); `load_enabled()` reads those of the enabled domains."""
from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services import registry

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
SQL_TYPE = re.compile(r"^[a-z][a-z0-9_ ]*(\([0-9, ]+\))?(\[\])?$")
# Columns of every replica table that belong to the pipeline, not to the spec.
RESERVED_COLUMNS = frozenset({"cdc_position", "cdc_commit_lsn", "cdc_deleted", "cdc_source_ts", "cdc_applied_at",
                              "cdc_generation"})
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
    types: dict[str, str] = Field(default_factory=dict)  # target column -> SQL type of the replica (default text)
    topic: str | None = None  # override of the source topic (benchmarks replay into a topic of their own)

    @model_validator(mode="after")
    def _check(self) -> ReplicationPair:
        services = registry.current()
        for end in (self.source, self.target):
            try:
                services.service(end.service)
            except KeyError as exc:
                raise ValueError(str(exc.args[0])) from None
        if self.source.service == self.target.service:
            raise ValueError("source and target are the same service; replication crosses services")
        source = services.service(self.source.service)
        if self.source.table not in source.captured_tables:
            raise ValueError(f"{self.source.service}.{self.source.table} is not captured by its connector")
        private = set(source.private_columns.get(self.source.table, ())) & {*self.key, *self.columns}
        if private:
            raise ValueError(f"{self.source.service}.{self.source.table} declares {', '.join(sorted(private))} "
                             "private: it never leaves its service")
        targets = [*self.key.values(), *self.columns.values()]
        for col, sql_type in self.types.items():
            if col not in targets:
                raise ValueError(f"types: {col!r} is not a target column")
            if not SQL_TYPE.match(sql_type):
                raise ValueError(f"types: {sql_type!r} is not a plain SQL type name")
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

    def sql_type(self, target_column: str) -> str:
        return self.types.get(target_column, "text")

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
    pairs: tuple[ReplicationPair, ...] = ()

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


def _read(path: Path) -> list:
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecError(f"{path}: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("pairs"), list):
        raise SpecError(f'{path}: expected {{"pairs": [...]}}')
    return raw["pairs"]


def spec_files() -> list[Path]:
    return [d.replication for d in registry.current().domains if d.replication is not None]


def load_enabled() -> ReplicationSpec:
    """Every pair of the enabled domains (an empty spec when none declares one)."""
    return _validate([p for f in spec_files() for p in _read(f)], ", ".join(f.name for f in spec_files()))


def load(path: Path | None = None) -> ReplicationSpec:
    """One spec file, or (no path) every enabled domain's; SpecError carries the validator's message, per field."""
    if path is None:
        return load_enabled()
    return _validate(_read(path), path.name)


def _validate(pairs: list, source: str) -> ReplicationSpec:
    try:
        return ReplicationSpec.model_validate({"pairs": pairs})
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise SpecError(f"{source or 'the replication spec'} is invalid:\n  " + "\n  ".join(lines)) from None
