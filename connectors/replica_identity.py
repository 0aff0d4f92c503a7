"""Checked at deploy: every table a replication pair reads has REPLICA IDENTITY FULL.

With the default identity, an UPDATE that leaves a large (TOASTed, over about 2 kB stored)
value unchanged reaches Debezium without that value, and Debezium puts its
unavailable-value placeholder in its place; a replica would store the placeholder. With FULL,
PostgreSQL logs the old row whole and Debezium fills the unchanged value from it."""
from __future__ import annotations

from collections.abc import Mapping

import psycopg

IDENTITY = {"d": "DEFAULT", "n": "NOTHING", "f": "FULL", "i": "USING INDEX"}


def problems(env: Mapping[str, str]) -> list[str]:
    """One line per pair source table that is missing or not FULL (empty when all are)."""
    from services.registry import current
    from streams.spec import load_enabled

    found: list[str] = []
    tables = sorted({(p.source.service, p.source.table) for p in load_enabled().pairs})
    for service, table in tables:
        svc = current().service(service)
        with psycopg.connect(env[f"{svc.env_prefix}_OBSERVER_URL"], connect_timeout=10) as conn:
            row = conn.execute("SELECT relreplident FROM pg_class WHERE oid = to_regclass(%s)",
                               (f"public.{table}",)).fetchone()
        if row is None:
            found.append(f"{service}.{table}: the table a replication pair reads does not exist (migrate first)")
        elif row[0] != "f":
            found.append(f"{service}.{table} has REPLICA IDENTITY {IDENTITY.get(row[0], row[0])}: an update that "
                         f"leaves a large value unchanged would reach replicas as Debezium's placeholder; add "
                         f"`ALTER TABLE {table} REPLICA IDENTITY FULL` to {service}'s migrations")
    return found
