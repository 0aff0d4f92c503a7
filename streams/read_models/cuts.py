"""The cut of a backfilled source (see services/db/migrations/versions/0004_read_model_cuts.py).

After a rebuild from a backfill, a source topic carries each row of its table up to the cut twice
at most: as the snapshot's read ('r') and, if it was inserted while the rebuild ran, as the
stream's insert ('c'). The cut admits exactly one of them: the read at or below the cut, the
insert above it. Updates and deletes always pass (the fold decides what they mean)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from schemas.envelope import ChangeEvent, MalformedEvent, parse_change
from streams.deadletter import RawMessage


@dataclass(frozen=True)
class Cut:
    topic: str
    key_column: str
    cut: int
    rows: int = 0


def admit(op: str, row: Mapping[str, Any] | None, cut: Cut) -> bool:
    if op not in ("r", "c") or row is None:
        return True
    key = row.get(cut.key_column)
    if not isinstance(key, int) or isinstance(key, bool):
        return True   # not a row the cut knows: the fold judges it (and dead-letters it if malformed)
    return key <= cut.cut if op == "r" else key > cut.cut


def admitted(msg: RawMessage, cuts: Mapping[str, Cut]) -> bool:
    cut = cuts.get(msg.topic)
    if cut is None:
        return True
    try:
        change = parse_change(msg.key, msg.value)
    except MalformedEvent:
        return True   # the fold raises it again, with its reason
    return not isinstance(change, ChangeEvent) or admit(change.op, change.row, cut)


LOAD = "SELECT topic, key_column, cut, rows FROM cdc_read_model_cuts WHERE model = %s"


def load(conn: psycopg.Connection, model: str) -> dict[str, Cut]:
    return {t: Cut(t, k, c, n) for t, k, c, n in conn.execute(LOAD, (model,)).fetchall()}


async def load_async(conn: psycopg.AsyncConnection, model: str) -> dict[str, Cut]:
    rows = await (await conn.execute(LOAD, (model,))).fetchall()
    return {t: Cut(t, k, c, n) for t, k, c, n in rows}


def replace(conn: psycopg.Connection, model: str, cuts: list[Cut]) -> None:
    """The model's cuts become `cuts` (none: a rebuild from offset 0 needs no cut)."""
    with conn.transaction():
        conn.execute("DELETE FROM cdc_read_model_cuts WHERE model = %s", (model,))
        for c in cuts:
            conn.execute("INSERT INTO cdc_read_model_cuts (model, topic, key_column, cut, rows) VALUES (%s, %s, %s, %s, %s)",
                         (model, c.topic, c.key_column, c.cut, c.rows))
