"""Writing a message to a service's outbox: in the caller's transaction, never to the broker.
Debezium publishes it (EventRouter: topic outbox.event.<aggregatetype>, key = aggregate id)."""
from __future__ import annotations

import uuid
from typing import Any

import orjson
import psycopg

INSERT = ("INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) "
          "VALUES (%s, %s, %s, %s, %s::jsonb)")


def _row(aggregatetype: str, aggregateid: str, event_type: str, payload: dict[str, Any]) -> tuple:
    return (uuid.uuid4(), aggregatetype, aggregateid, event_type, orjson.dumps(payload).decode())


def write(conn: psycopg.Connection, aggregatetype: str, aggregateid: str, event_type: str,
          payload: dict[str, Any]) -> None:
    conn.execute(INSERT, _row(aggregatetype, aggregateid, event_type, payload))


async def write_async(conn: psycopg.AsyncConnection, aggregatetype: str, aggregateid: str, event_type: str,
                      payload: dict[str, Any]) -> None:
    await conn.execute(INSERT, _row(aggregatetype, aggregateid, event_type, payload))
