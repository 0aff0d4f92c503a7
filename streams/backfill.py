"""Backfill: refill a replica from its source through Debezium's incremental snapshot, so the
rows travel the same path as every change (topic -> worker -> position-guarded apply) and no
worker ever reads the source database. Snapshot reads carry positions too, so a row already
newer in the replica is left alone."""
from __future__ import annotations

import json
import uuid

import psycopg

from services.registry import SIGNAL_TABLE, current
from streams.spec import ReplicationPair


def request_snapshot(pair: ReplicationPair, env: dict[str, str]) -> str:
    """Backfill a replication pair: an incremental snapshot of its source table."""
    return signal_snapshot(env, pair.source.service, pair.source.table, f"backfill-{pair.name}")


def signal_snapshot(env: dict[str, str], service: str, table: str, purpose: str, condition: str | None = None,
                    kind: str = "incremental") -> str:
    """Insert an execute-snapshot signal into the service's signal table (as Debezium's role, the
    only one besides the owner allowed to write it), for the rows `condition` selects, or all
    (an incremental snapshot's condition is a WHERE clause, a blocking one's a whole SELECT).
    Returns the signal id.

    `incremental` interleaves chunks with the stream and drops a chunk's row when a change of the
    same message key streams meanwhile: right for a replica, but rows that share a message key
    (clicks keyed by url_id) collapse to one per key. `blocking` pauses the stream and reads every row."""
    spec = current().service(service)
    signal_id = f"{purpose}-{uuid.uuid4().hex[:8]}"
    data: dict = {"data-collections": [f"public.{table}"], "type": kind}
    if condition:
        data["additional-conditions"] = [{"data-collection": f"public.{table}", "filter": condition}]
    with psycopg.connect(env[f"{spec.env_prefix}_DEBEZIUM_URL"], connect_timeout=5, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {SIGNAL_TABLE} (id, type, data) VALUES (%s, 'execute-snapshot', %s)",
                     (signal_id, json.dumps(data)))
    return signal_id
