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
    """Insert an execute-snapshot signal into the source's signal table (as Debezium's role,
    the only one besides the owner allowed to write it). Returns the signal id."""
    source = current().service(pair.source.service)
    signal_id = f"backfill-{pair.name}-{uuid.uuid4().hex[:8]}"
    data = {"data-collections": [f"public.{pair.source.table}"], "type": "incremental"}
    with psycopg.connect(env[f"{source.env_prefix}_DEBEZIUM_URL"], connect_timeout=5, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {SIGNAL_TABLE} (id, type, data) VALUES (%s, 'execute-snapshot', %s)",
                     (signal_id, json.dumps(data)))
    return signal_id
