"""One service's saga tables in memory, behind the part of psycopg's AsyncConnection the saga
runtime uses (execute, transaction), so unit tests run the real participant and choreography
runtime code (streams/sagas/participant.py, choreography_runtime.py) without a database.

It understands the statements those modules send, by shape: INSERT ... [ON CONFLICT (key) DO
NOTHING | DO UPDATE SET col = EXCLUDED.col, ...] into a known table, SELECT of columns FROM one
table WHERE col = value AND ... [ORDER BY col] [LIMIT n] [FOR UPDATE [SKIP LOCKED]], and the
advisory step lock. Anything else fails the test, naming the statement: the runtime's SQL has
changed, and this store (and the database tier, tests/db) must follow it. A transaction block
is a savepoint: an exception inside it restores the tables as they were when it began."""
from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import orjson

KEYS = {"saga_inbox": ("saga_id", "step", "action"), "saga_watches": ("saga_id", "step", "phase"), "outbox": ("id",)}


class UnknownStatement(AssertionError):
    pass


class Cursor:
    def __init__(self, rows: list[tuple], rowcount: int = 0) -> None:
        self.rows, self.rowcount = rows, rowcount

    async def fetchone(self) -> tuple | None:
        return self.rows[0] if self.rows else None

    async def fetchall(self) -> list[tuple]:
        return list(self.rows)


class Transaction:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    async def __aenter__(self) -> Transaction:
        self.saved = copy.deepcopy(self.store.tables)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self.store.tables = self.saved
        return False


def _norm(query: str) -> str:
    return re.sub(r"\s+", " ", str(query)).strip()


def _value(v: Any) -> Any:
    return getattr(v, "obj", v)  # psycopg's Jsonb wrapper -> the object


class MemoryStore:
    """The tables of one service's database: saga_inbox, saga_watches, outbox, and `effects`
    (what the test's handlers did, in their transaction like a domain table)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tables: dict[str, dict[tuple, dict[str, Any]]] = {t: {} for t in KEYS}
        self.tables["effects"] = {}
        self.locks: list[tuple] = []
        self.statements: list[str] = []
        self.clock = datetime(2026, 1, 1, tzinfo=UTC)

    # --- the AsyncConnection surface ---
    def transaction(self) -> Transaction:
        return Transaction(self)

    async def execute(self, query: Any, params: tuple | list | None = None) -> Cursor:
        q, params = _norm(query), tuple(params or ())
        self.statements.append(q)
        if re.fullmatch(r"SELECT pg_advisory_xact_lock\(hashtext\(%s\), %s\)", q):
            self.locks.append(params)
            return Cursor([(None,)])
        if q.startswith("INSERT INTO "):
            return self._insert(q, params)
        if q.startswith("SELECT "):
            return self._select(q, params)
        raise UnknownStatement(f"{self.name}: the memory store does not know {q!r}")

    # --- rows, for assertions ---
    def rows(self, table: str) -> list[dict[str, Any]]:
        return list(self.tables[table].values())

    def add_effect(self, seq: int, what: tuple[str, str]) -> None:
        self.tables["effects"][(seq,)] = {"seq": seq, "what": what}

    # --- statements ---
    def _insert(self, q: str, params: tuple) -> Cursor:
        m = re.fullmatch(r"INSERT INTO (\w+) \(([^)]*)\) VALUES \(([^)]*)\)"
                         r"(?: ON CONFLICT \(([^)]*)\) DO (NOTHING|UPDATE SET (.*)))?", q)
        if not m or m.group(1) not in KEYS:
            raise UnknownStatement(f"{self.name}: the memory store does not know {q!r}")
        table, cols = m.group(1), [c.strip() for c in m.group(2).split(",")]
        placeholders = [p.strip() for p in m.group(3).split(",")]
        if len(placeholders) != len(cols) or any(not p.startswith("%s") for p in placeholders):
            raise UnknownStatement(f"{self.name}: values other than parameters in {q!r}")
        row: dict[str, Any] = {}
        for col, ph, v in zip(cols, placeholders, params, strict=True):
            v = _value(v)
            row[col] = orjson.loads(v) if ph == "%s::jsonb" else v
        row.setdefault("handled_at" if table == "saga_inbox" else "updated_at", self._now())
        key = tuple(row[k] for k in KEYS[table])
        if m.group(4) is not None and tuple(c.strip() for c in m.group(4).split(",")) != KEYS[table]:
            raise UnknownStatement(f"{self.name}: conflict on other columns than the key of {table}: {q!r}")
        existing = self.tables[table].get(key)
        if existing is None:
            self.tables[table][key] = row
            return Cursor([], 1)
        if m.group(5) is None:
            raise UnknownStatement(f"{self.name}: duplicate key {key} in {table} (a real database raises here)")
        if m.group(5) == "NOTHING":
            return Cursor([], 0)
        for assignment in m.group(6).split(","):
            col, expr = (s.strip() for s in assignment.split("="))
            if expr == f"EXCLUDED.{col}":
                existing[col] = row[col]
            elif expr == "clock_timestamp()":
                existing[col] = self._now()
            else:
                raise UnknownStatement(f"{self.name}: update {assignment!r} in {q!r}")
        return Cursor([], 1)

    def _select(self, q: str, params: tuple) -> Cursor:
        m = re.fullmatch(r"SELECT (.+?) FROM (\w+) WHERE (.+?)(?: ORDER BY (\w+))?(?: LIMIT %s)?"
                         r"( FOR UPDATE(?: SKIP LOCKED)?)?", q)
        if not m or m.group(2) not in self.tables:
            raise UnknownStatement(f"{self.name}: the memory store does not know {q!r}")
        exprs, table, where, order = [e.strip() for e in _split_columns(m.group(1))], m.group(2), m.group(3), m.group(4)
        args = list(params)
        conditions = []
        for cond in where.split(" AND "):
            c = re.fullmatch(r"(\w+) (=|<|<>) (%s|'[^']*'|to_timestamp\(%s\))", cond.strip())
            if not c:
                raise UnknownStatement(f"{self.name}: condition {cond!r} in {q!r}")
            col, op, rhs = c.groups()
            if rhs == "%s":
                value: Any = args.pop(0)
            elif rhs == "to_timestamp(%s)":
                value = datetime.fromtimestamp(args.pop(0), tz=UTC)
            else:
                value = rhs.strip("'")
            conditions.append((col, op, value))
        limit = args.pop(0) if " LIMIT %s" in q else None
        if args:
            raise UnknownStatement(f"{self.name}: parameters left over {args} in {q!r}")
        ops = {"=": lambda a, b: a == b, "<": lambda a, b: a < b, "<>": lambda a, b: a != b}
        found = [r for r in self.tables[table].values() if all(ops[op](r[col], v) for col, op, v in conditions)]
        if order:
            found.sort(key=lambda r: r[order])
        if limit is not None:
            found = found[:limit]
        return Cursor([tuple(self._column(r, e, q) for e in exprs) for r in found])

    def _column(self, row: dict[str, Any], expr: str, q: str) -> Any:
        if expr == "1":
            return 1
        if m := re.fullmatch(r"extract\(epoch FROM (\w+)\)", expr):
            return row[m.group(1)].timestamp()
        if re.fullmatch(r"\w+", expr) and expr in row:
            return row[expr]
        raise UnknownStatement(f"{self.name}: column {expr!r} in {q!r}")

    def _now(self) -> datetime:
        return self.clock


def _split_columns(text: str) -> list[str]:
    """Split a select list on the commas outside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    return [*out, cur]
