"""The service's publication and Debezium's grants, derived from `ServiceSpec.captured_tables`
at every migrate (as the owning role: Debezium's role cannot create publications)."""
from __future__ import annotations

import psycopg
from psycopg import sql

from services.registry import DEBEZIUM_ROLE, HEARTBEAT_TABLE, OUTBOX_TABLE, SIGNAL_TABLE, ServiceSpec


def published_tables(service: ServiceSpec) -> list[str]:
    return [*service.captured_tables, OUTBOX_TABLE, SIGNAL_TABLE, HEARTBEAT_TABLE]


def sync(conn: psycopg.Connection, service: ServiceSpec) -> None:
    """Publish exactly the declared tables; Debezium reads them and writes only its signal
    (incremental-snapshot watermarks) and heartbeat (an upsert) tables."""
    tables = sql.SQL(", ").join(sql.Identifier(t) for t in published_tables(service))
    pub = sql.Identifier(service.publication)
    exists = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (service.publication,)).fetchone()
    verb = sql.SQL("ALTER PUBLICATION {} SET TABLE {}") if exists else sql.SQL("CREATE PUBLICATION {} FOR TABLE {}")
    conn.execute(verb.format(pub, tables))
    debezium = sql.Identifier(DEBEZIUM_ROLE)
    conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(tables, debezium))
    conn.execute(sql.SQL("GRANT INSERT ON {} TO {}").format(sql.Identifier(SIGNAL_TABLE), debezium))
    conn.execute(sql.SQL("GRANT INSERT, UPDATE ON {} TO {}").format(sql.Identifier(HEARTBEAT_TABLE), debezium))
