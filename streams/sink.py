"""Applies a batch of replica rows to the target service's database in one transaction:
COPY into a staging table, then one INSERT ... ON CONFLICT ... WHERE the stored change is older
in commit order (snapshot reads only fill missing rows, and columns a row was written without: see
streams/generations.py). Replays, duplicates and out-of-order deliveries therefore change nothing."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
import psycopg
from psycopg import sql

from streams.generations import ColumnGenerations, plan
from streams.projection import ReplicaRow, keeps_data_on_delete, source_identity_problem
from streams.spec import ReplicationPair

PIPELINE_COLUMNS = ("cdc_position", "cdc_commit_lsn", "cdc_deleted", "cdc_source_ts")
GENERATION_COLUMN = "cdc_generation"


class FatalSinkError(RuntimeError):
    """Retrying cannot help and applying would be wrong: stop before acknowledging."""


class SinkSchemaError(FatalSinkError):
    """The replica table does not match the spec: a deployment error, not bad data."""


class SourceRebuiltError(FatalSinkError):
    """Changes come from another source cluster than the one the replica was filled from."""


class ReplicaSink:
    def __init__(self, pair: ReplicationPair, dsn: str) -> None:
        self.pair = pair
        self.dsn = dsn
        self.conn: psycopg.AsyncConnection | None = None
        self.key_cols = list(pair.key.values())
        self.data_cols = list(pair.columns.values())
        self.all_cols = [*self.key_cols, *self.data_cols, *PIPELINE_COLUMNS]
        self.staging = f"cdc_staging_{pair.replica_table}"
        self.recorded_source: str | None = None
        self._upsert: sql.Composed | None = None  # built once the column generations are known

    async def connection(self) -> psycopg.AsyncConnection:
        if self.conn is None or self.conn.closed:
            conn = await psycopg.AsyncConnection.connect(self.dsn, connect_timeout=5,
                                                         application_name=self.pair.group_id)
            try:  # kept only once fully set up: a half-prepared connection would fail every batch
                await self._check_schema(conn)
                generations = await self._record_generation(conn)
                cur = await conn.execute("SELECT source_system_id FROM cdc_replication_sources WHERE pair = %s",
                                         (self.pair.name,))
                row = await cur.fetchone()
                await conn.execute(sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS").format(
                    sql.Identifier(self.staging), sql.Identifier(self.pair.replica_table)))
                await conn.commit()
            except BaseException:
                await conn.close()
                raise
            self.recorded_source = row[0] if row else None
            self._upsert = self._upsert_sql(generations)
            self.conn = conn
        return self.conn

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None

    async def _check_schema(self, conn: psycopg.AsyncConnection) -> None:
        cur = await conn.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                                 "AND table_name = %s", (self.pair.replica_table,))
        have = {r[0] for r in await cur.fetchall()}
        missing = [c for c in [*self.all_cols, GENERATION_COLUMN] if c not in have]
        if missing:
            raise SinkSchemaError(f"{self.pair.target.service}.{self.pair.replica_table} lacks columns {missing} "
                                  "that the replication spec needs (run the target service's migrations)")

    async def _record_generation(self, conn: psycopg.AsyncConnection) -> ColumnGenerations:
        """Record the pair's column list as a new generation when it changed (two workers of one
        pair racing to record the same one keep one, by the key)."""
        cur = await conn.execute("SELECT generation, columns FROM cdc_replica_generations WHERE pair = %s "
                                 "ORDER BY generation", (self.pair.name,))
        new, generations = plan(await cur.fetchall(), self.data_cols)
        if new is not None:
            await conn.execute("INSERT INTO cdc_replica_generations (pair, generation, columns) VALUES (%s, %s, %s) "
                               "ON CONFLICT DO NOTHING", (self.pair.name, new, self.data_cols))
        return generations

    def _upsert_sql(self, generations: ColumnGenerations) -> sql.Composed:
        t = sql.Identifier(self.pair.replica_table)
        cols = sql.SQL(", ").join(map(sql.Identifier, self.all_cols))
        keep = keeps_data_on_delete(self.pair)
        fillable = generations.fillable
        row_generation = sql.SQL("COALESCE(t.{}, 1)").format(sql.Identifier(GENERATION_COLUMN))
        is_read = sql.SQL("EXCLUDED.cdc_commit_lsn < 0")

        def unless_a_fill(col: str, streamed: sql.Composable) -> sql.Composable:
            """A read that passed the WHERE is a fill: it sets only the columns the row lacks."""
            if not fillable:
                return streamed
            c = sql.Identifier(col)
            kept: sql.Composable = sql.SQL("t.{}").format(c)
            if col in fillable:
                kept = sql.SQL("CASE WHEN {} < {} THEN EXCLUDED.{} ELSE t.{} END").format(
                    row_generation, sql.Literal(fillable[col]), c, c)
            return sql.SQL("CASE WHEN {} THEN {} ELSE {} END").format(is_read, kept, streamed)

        sets = []
        for col in self.data_cols:
            c = sql.Identifier(col)
            if keep:  # soft delete: a delete keeps the last data it had
                streamed: sql.Composable = sql.SQL("CASE WHEN EXCLUDED.cdc_deleted THEN t.{c} ELSE EXCLUDED.{c} END").format(c=c)
            else:
                streamed = sql.SQL("EXCLUDED.{c}").format(c=c)
            sets.append(sql.SQL("{} = {}").format(c, unless_a_fill(col, streamed)))
        for col in PIPELINE_COLUMNS:
            c = sql.Identifier(col)
            sets.append(sql.SQL("{} = {}").format(c, unless_a_fill(col, sql.SQL("EXCLUDED.{}").format(c))))
        for col in ("cdc_applied_at", GENERATION_COLUMN):
            sets.append(sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(col)))
        newer: sql.Composable = sql.SQL("(EXCLUDED.cdc_commit_lsn >= 0 "
                        "AND (t.cdc_commit_lsn, t.cdc_position) < (EXCLUDED.cdc_commit_lsn, EXCLUDED.cdc_position))")
        if fillable:  # a read emitted after the row's change, of a row written without some column
            newer = sql.SQL("{} OR ({} AND NOT t.cdc_deleted AND {} < {} AND EXCLUDED.cdc_position > t.cdc_position)").format(
                newer, is_read, row_generation, sql.Literal(max(fillable.values())))
        return sql.SQL(
            "INSERT INTO {t} AS t ({cols}, cdc_applied_at, {gen_col}) SELECT {cols}, clock_timestamp(), {gen} FROM {src} "
            "ON CONFLICT ({key}) DO UPDATE SET {sets} WHERE {newer}"
        ).format(t=t, cols=cols, src=sql.Identifier(self.staging), gen_col=sql.Identifier(GENERATION_COLUMN),
                 gen=sql.Literal(generations.current),
                 key=sql.SQL(", ").join(map(sql.Identifier, self.key_cols)), sets=sql.SQL(", ").join(sets),
                 newer=newer)

    def _prepared_upsert(self) -> sql.Composed:
        assert self._upsert is not None, "built by connection()"
        return self._upsert

    @staticmethod
    def _record(row: ReplicaRow) -> tuple:
        ts = datetime.fromtimestamp(row.source_ts_ms / 1000, tz=UTC)
        values = [orjson.dumps(v).decode() if isinstance(v, (dict, list)) else v for v in row.values]
        return (*row.key, *values, row.position, row.commit_lsn, row.deleted, ts)

    async def apply(self, rows: Sequence[ReplicaRow]) -> int:
        """One transaction for the batch; returns how many rows changed (older ones are skipped)."""
        conn = await self.connection()
        try:
            async with conn.transaction():
                recorded = await self._guard_source(conn, rows)
                await self._stage(conn, rows)
                cur = await conn.execute(self._prepared_upsert())
            self.recorded_source = recorded  # only once the transaction that recorded it committed
            return cur.rowcount
        except BaseException:
            await self._reset_if_broken()
            raise

    async def apply_each(self, rows: Sequence[ReplicaRow]) -> tuple[int, list[tuple[ReplicaRow, str]]]:
        """Row by row, each in a savepoint of one transaction: bad rows are returned with the
        database's reason, the others are applied. Transient errors still propagate."""
        conn = await self.connection()
        applied, failed = 0, []
        try:
            async with conn.transaction():
                recorded = await self._guard_source(conn, rows)
                for row in rows:
                    try:
                        async with conn.transaction():  # savepoint
                            await self._stage(conn, [row])
                            cur = await conn.execute(self._prepared_upsert())
                            applied += cur.rowcount
                            await conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(self.staging)))
                    except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
                        failed.append((row, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"))
        except BaseException:
            await self._reset_if_broken()
            raise
        self.recorded_source = recorded
        return applied, failed

    async def _guard_source(self, conn: psycopg.AsyncConnection, rows: Sequence[ReplicaRow]) -> str | None:
        """Refuse changes of another source cluster; record the first one seen. Returns the
        identifier recorded once this transaction commits."""
        problem = source_identity_problem(self.recorded_source, rows)
        if problem:
            raise SourceRebuiltError(f"{self.pair.name}: {problem}")
        if self.recorded_source is None:
            ids = {r.source_system_id for r in rows if r.source_system_id and r.source_system_id != "unknown"}
            if ids:
                await conn.execute("INSERT INTO cdc_replication_sources (pair, source_system_id) VALUES (%s, %s) "
                                   "ON CONFLICT (pair) DO NOTHING", (self.pair.name, next(iter(ids))))
                return next(iter(ids))
        return self.recorded_source

    async def _stage(self, conn: psycopg.AsyncConnection, rows: Sequence[ReplicaRow]) -> None:
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(self.staging), sql.SQL(", ").join(map(sql.Identifier, self.all_cols)))
        async with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            for row in rows:
                await copy.write_row(self._record(row))

    async def _reset_if_broken(self) -> None:
        if self.conn is not None and (self.conn.closed or self.conn.broken):
            self.conn = None
