"""Purge of delete markers: a replica of a pair with delete policy `delete` keeps a marker per
deleted row (so a redelivered older change cannot bring the row back), but only while the source
topic can still redeliver such a change: its retention and segment time plus a margin (streams/topic_retention.py,
the saga inbox's rule). Older markers are deleted in small batches, each its own transaction, so
the purge never holds many row locks or a long one. A topic that keeps messages forever keeps
the markers forever. Soft-delete pairs keep their deleted rows' data on purpose: never purged.

Why `cdc_applied_at` and not `cdc_source_ts`: a message can be redelivered until `retention`
after it was written to Kafka. Every older change of the row was written before the delete's
message, and the marker was applied (cdc_applied_at, the target's clock) after that write, so
once `applied_at + retention` has passed no older change can come back. The source timestamp is
the commit in the source database, which can be long before the write to Kafka (a connector that
was down, then published a backlog): purging by it could drop a marker while its row's older
insert is still in the topic, and it is another machine's clock. The margin covers Kafka deleting
expired segments on a periodic check and clock differences between the broker and the target."""
from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from streams.projection import keeps_data_on_delete
from streams.spec import ReplicationPair

BATCH = 1_000


def purges_markers(pair: ReplicationPair) -> bool:
    """Only pairs whose deletes leave data-less markers; soft deletes are rows readers still see."""
    return not keeps_data_on_delete(pair)


def purge_sql(pair: ReplicationPair) -> sql.Composed:
    """One batch. The conditions are repeated outside the ctid subquery: a marker the sink turns
    back into a live row (a re-insert) between the two is re-checked on its new version and kept."""
    expired = sql.SQL("cdc_deleted AND cdc_applied_at < now() - make_interval(secs => %(keep)s)")
    return sql.SQL("DELETE FROM {t} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {t} WHERE {expired} LIMIT %(batch)s)) "
                   "AND {expired}").format(t=sql.Identifier(pair.replica_table), expired=expired)


@dataclass
class MarkerPurge:
    pair: ReplicationPair
    keep_s: float | None = None   # None: the topic keeps messages forever (or its retention is unknown yet)
    batch: int = BATCH
    runs: int = 0
    markers_purged: int = 0
    last_run: float | None = None  # unix time of the last finished run

    def __post_init__(self) -> None:
        if not purges_markers(self.pair):
            raise ValueError(f"{self.pair.name} keeps deleted rows ({self.pair.delete_policy}): nothing to purge")
        self._sql = purge_sql(self.pair)

    async def run(self, conn: psycopg.AsyncConnection) -> int:
        """Delete expired markers, a committed batch at a time (`conn` in autocommit); returns how many."""
        purged = 0
        if self.keep_s is not None:
            while True:
                cur = await conn.execute(self._sql, {"keep": self.keep_s, "batch": self.batch})
                purged += cur.rowcount
                self.markers_purged += cur.rowcount  # counted per committed batch
                if cur.rowcount < self.batch:
                    break
        self.runs += 1
        self.last_run = time.time()
        return purged

    def stats(self) -> dict:
        return {"runs": self.runs, "markers_purged": self.markers_purged,
                "last_run": round(self.last_run, 3) if self.last_run else None, "keep_s": self.keep_s}
