"""Roles and database of one service cluster, least privilege:

- <service>_service owns the service database (and so its tables and publication);
- cdc_debezium may replicate and read what the migrations grant it, nothing else;
- cdc_observer reads, for `observe`;
- nobody else may connect (REVOKE CONNECT ... FROM PUBLIC).
Run as the cluster's superuser at every `up`; every statement is idempotent.
"""
from __future__ import annotations

import psycopg
from psycopg import sql

from services.registry import DEBEZIUM_ROLE, OBSERVER_ROLE, ServiceSpec, current
from stack.postgres import SUPERUSER
from stack.secrets import secret_name
from stack.settings import HOST


def dsn(user: str, password: str, port: int, database: str) -> str:
    return f"postgresql://{user}:{password}@{HOST}:{port}/{database}"


def _ensure_role(cur: psycopg.Cursor, role: str, password: str, replication: bool = False) -> None:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    verb = "ALTER" if cur.fetchone() else "CREATE"
    cur.execute(sql.SQL("{} ROLE {} LOGIN {} PASSWORD {}").format(
        sql.SQL(verb), sql.Identifier(role),
        sql.SQL("REPLICATION" if replication else "NOREPLICATION"), sql.Literal(password)))


def bootstrap(service: ServiceSpec, port: int, secrets: dict[str, str]) -> None:
    su_dsn = dsn(SUPERUSER, secrets[secret_name(service, "superuser")], port, "postgres")
    with psycopg.connect(su_dsn, autocommit=True) as conn, conn.cursor() as cur:
        _ensure_role(cur, service.role, secrets[secret_name(service, "service")])
        _ensure_role(cur, DEBEZIUM_ROLE, secrets[secret_name(service, "debezium")], replication=True)
        _ensure_role(cur, OBSERVER_ROLE, secrets[secret_name(service, "observer")])
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (service.database,))
        if not cur.fetchone():
            cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(service.database), sql.Identifier(service.role)))
        for db in ("postgres", "template1", service.database):
            cur.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db)))
        cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(
            sql.Identifier(service.database), sql.Identifier(DEBEZIUM_ROLE), sql.Identifier(OBSERVER_ROLE)))
        # Observer sees replication slots and statistics, not data of other roles beyond SELECT grants.
        cur.execute(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(OBSERVER_ROLE)))

    db_dsn = dsn(SUPERUSER, secrets[secret_name(service, "superuser")], port, service.database)
    with psycopg.connect(db_dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        cur.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(service.role)))
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}, {}").format(
            sql.Identifier(DEBEZIUM_ROLE), sql.Identifier(OBSERVER_ROLE)))
        # Tables the service creates later are readable by the observer; Debezium gets
        # SELECT only on captured tables, granted by the migrations that create them.
        cur.execute(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT ON TABLES TO {}").format(
            sql.Identifier(service.role), sql.Identifier(OBSERVER_ROLE)))


def system_ids(settings, secrets: dict[str, str]) -> dict[str, str]:
    """Each cluster's system identifier (changes when a cluster is rebuilt): stamped on every
    row event by the connectors, so replicas can tell a rebuilt source from an old one."""
    ids = {}
    for svc in current().services:
        su = dsn(SUPERUSER, secrets[secret_name(svc, "superuser")], settings.pg_ports[svc.name], "postgres")
        with psycopg.connect(su) as conn:
            row = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
            assert row is not None
            ids[svc.name] = str(row[0])
    return ids
