"""Replica tables, derived from the replication pairs that target a service: the physical
`<table>_replica` (replicated columns, the pipeline's position and delete marker) and the view
`<table>` readers use. Run at every migrate; a column added to a pair is added here (a backfill
fills it on the rows written before: streams/generations.py), nothing is ever dropped."""
from __future__ import annotations

import psycopg
from psycopg import sql

from streams.spec import REPLICA_SUFFIX, DeletePolicy, ReplicationPair

PIPELINE_COLUMNS = (
    ("cdc_position", "bigint NOT NULL"),             # source LSN of the change that wrote the row
    ("cdc_commit_lsn", "bigint NOT NULL DEFAULT 0"),  # its transaction's commit LSN; -1: a snapshot read
    ("cdc_deleted", "boolean NOT NULL DEFAULT false"),
    ("cdc_source_ts", "timestamptz"),
    ("cdc_applied_at", "timestamptz NOT NULL DEFAULT clock_timestamp()"),
    # the pair's column list the row was written under (streams/generations.py); NULL: the first
    ("cdc_generation", "integer"),
)


def ddl(pair: ReplicationPair) -> list[sql.Composed]:
    table = sql.Identifier(pair.replica_table)
    key_col = next(iter(pair.key.values()))
    columns = [(c, pair.sql_type(c)) for c in pair.columns.values()]
    statements: list[sql.Composed] = [sql.SQL("CREATE TABLE IF NOT EXISTS {} ({} {} PRIMARY KEY)").format(
        table, sql.Identifier(key_col), sql.SQL(pair.sql_type(key_col)))]
    for name, sql_type in [*columns, *PIPELINE_COLUMNS]:
        statements.append(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
            table, sql.Identifier(name), sql.SQL(sql_type)))
    shown = sql.SQL(", ").join(sql.Identifier(n) for n, _ in columns)
    if pair.delete_policy is DeletePolicy.SOFT_DELETE:
        body = sql.SQL("SELECT {}, {}, cdc_deleted AS deleted FROM {}").format(sql.Identifier(key_col), shown, table)
    else:
        body = sql.SQL("SELECT {}, {} FROM {} WHERE NOT cdc_deleted").format(sql.Identifier(key_col), shown, table)
        # the purge of expired markers (streams/purge.py) finds them without scanning live rows
        statements.append(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (cdc_applied_at) WHERE cdc_deleted").format(
            sql.Identifier(pair.replica_table + "_markers"), table))
    statements.append(sql.SQL("CREATE OR REPLACE VIEW {} AS {}").format(sql.Identifier(pair.target.table), body))
    return statements


def sync(conn: psycopg.Connection, pairs: list[ReplicationPair]) -> None:
    for pair in pairs:
        assert pair.replica_table.endswith(REPLICA_SUFFIX)
        for statement in ddl(pair):
            conn.execute(statement)
