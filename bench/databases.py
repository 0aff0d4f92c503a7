"""The bench's own databases on the stack's PostgreSQL instances, made with the clusters'
superuser (an operator tool, like `up`): a source table on the orders instance, and an empty
target database for the JDBC sink on the inventory instance (ours writes to its replica table
in the inventory database, the same instance). One role, `cdc_bench`, owns them all."""
from __future__ import annotations

import secrets as pysecrets
from dataclasses import dataclass

import psycopg
from psycopg import sql

from services.registry import ServiceSpec, current
from stack.postgres import SUPERUSER
from stack.roles import dsn
from stack.secrets import read_env_file, secret_name
from stack.settings import StackSettings

ROLE = "cdc_bench"
SOURCE_DB = "bench_source"
PEER_DB = "bench_jdbc"
PUBLICATION = "bench_pub"


def _service(name: str) -> ServiceSpec:
    return current().service(name)


@dataclass(frozen=True)
class BenchDatabases:
    settings: StackSettings
    password: str

    @classmethod
    def prepare(cls, settings: StackSettings) -> BenchDatabases:
        password = pysecrets.token_hex(16)  # new at every bench: nothing to keep or leak
        cls(settings, password).drop()       # what an interrupted bench left (slots block DROP DATABASE)
        for service, database in (("orders", SOURCE_DB), ("inventory", PEER_DB)):
            with psycopg.connect(cls._superuser(settings, service, "postgres"), autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
                verb = "ALTER" if exists else "CREATE"
                conn.execute(sql.SQL(verb + " ROLE {} LOGIN REPLICATION PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(password)))
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database),
                                                                           sql.Identifier(ROLE)))
        return cls(settings, password)

    @staticmethod
    def _superuser(settings: StackSettings, service: str, database: str) -> str:
        svc = _service(service)
        su_password = read_env_file(settings.secrets_file)[secret_name(svc, "superuser")]
        return dsn(SUPERUSER, su_password, settings.pg_ports[service], database)

    def url(self, service: str, database: str) -> str:
        return dsn(ROLE, self.password, self.settings.pg_ports[service], database)

    @property
    def source_url(self) -> str:
        return self.url("orders", SOURCE_DB)

    @property
    def peer_url(self) -> str:
        return self.url("inventory", PEER_DB)

    def drop(self) -> None:
        for service, database in (("orders", SOURCE_DB), ("inventory", PEER_DB)):
            with psycopg.connect(self._superuser(self.settings, service, "postgres"), autocommit=True) as conn:
                for (slot,) in conn.execute("SELECT slot_name FROM pg_replication_slots WHERE database = %s",
                                            (database,)).fetchall():
                    conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
