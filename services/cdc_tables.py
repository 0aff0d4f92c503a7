"""DDL every service database shares for change data capture: the outbox (EventRouter
shape), Debezium's signal and heartbeat tables, the publication, and Debezium's grants.
Called from the services' migrations, which run as the owning role."""
from __future__ import annotations

from collections.abc import Iterable

from alembic import op

from services.catalog import DEBEZIUM_ROLE, HEARTBEAT_TABLE, OUTBOX_TABLE, SIGNAL_TABLE

CDC_TABLES_DDL = f"""
CREATE TABLE {OUTBOX_TABLE} (
    id            uuid PRIMARY KEY,
    aggregatetype varchar(255) NOT NULL,
    aggregateid   varchar(255) NOT NULL,
    type          varchar(255) NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {SIGNAL_TABLE} (
    id   varchar(64) PRIMARY KEY,
    type varchar(32) NOT NULL,
    data text
);
CREATE TABLE {HEARTBEAT_TABLE} (
    id integer PRIMARY KEY,
    ts timestamptz NOT NULL
);
"""


def create_cdc_tables() -> None:
    op.execute(CDC_TABLES_DDL)


def publish(publication: str, captured_tables: Iterable[str]) -> None:
    """Create the publication (owner only: Debezium's role cannot) and grant Debezium just
    enough: SELECT on what it captures, writes only on its signal and heartbeat tables."""
    tables = [*captured_tables, OUTBOX_TABLE, SIGNAL_TABLE, HEARTBEAT_TABLE]
    op.execute(f"CREATE PUBLICATION {publication} FOR TABLE {', '.join(tables)}")
    op.execute(f"GRANT SELECT ON {', '.join(tables)} TO {DEBEZIUM_ROLE}")
    op.execute(f"GRANT INSERT ON {SIGNAL_TABLE} TO {DEBEZIUM_ROLE}")  # incremental-snapshot watermarks
    # heartbeat.action.query is an upsert: INSERT ... ON CONFLICT DO UPDATE
    op.execute(f"GRANT INSERT, UPDATE ON {HEARTBEAT_TABLE} TO {DEBEZIUM_ROLE}")


REPLICATION_SOURCES_DDL = """
CREATE TABLE cdc_replication_sources (
    pair             text PRIMARY KEY,
    source_system_id text NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);
"""


def create_replication_sources() -> None:
    """In a replication target: which source cluster each pair was filled from."""
    op.execute(REPLICATION_SOURCES_DDL)


def add_commit_order(replica_table: str) -> None:
    op.execute(f"ALTER TABLE {replica_table} ADD COLUMN cdc_commit_lsn bigint NOT NULL DEFAULT 0")


def create_replica_table(view: str, key: tuple[str, str], columns: list[tuple[str, str]], soft_delete: bool) -> None:
    """In a replication target: the physical `<view>_replica` table (replicated columns plus the
    pipeline's position and delete marker) and the view readers use. With soft delete the view
    shows deleted rows, flagged; otherwise delete markers are hidden."""
    key_col, key_type = key
    defs = "\n".join(f"    {name:<18} {sql_type}," for name, sql_type in columns)
    names = ", ".join(name for name, _ in columns)
    shown = f"{names}, cdc_deleted AS deleted FROM {view}_replica" if soft_delete else \
        f"{names} FROM {view}_replica WHERE NOT cdc_deleted"
    op.execute(f"""
CREATE TABLE {view}_replica (
    {key_col:<18} {key_type} PRIMARY KEY,
{defs}
    cdc_position       bigint NOT NULL,
    cdc_deleted        boolean NOT NULL DEFAULT false,
    cdc_source_ts      timestamptz,
    cdc_applied_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE VIEW {view} AS
    SELECT {key_col}, {shown};
""")
