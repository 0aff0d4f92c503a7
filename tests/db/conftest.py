"""Database tier: one throwaway PostgreSQL cluster per session, started as the stack starts its
clusters (stack/postgres.py: an unprivileged OS user when we are root, TCP on 127.0.0.1 only), and
a fresh database per test, copied from a template migrated once per service with the project's
real migrations (services/migrations.py). No Kafka, no Connect: the SQL the workers run, alone."""
from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from cdc_testing.ports import PORT_TAKEN, free_port
from services import migrations
from services.registry import DEBEZIUM_ROLE, current
from stack.postgres import SUPERUSER, _as_pg_user, _chown, cluster_conf, find_bin_dir, stop_dir
from stack.roles import dsn

# Only for a cluster thrown away at the end: durability is not under test, speed is. A short
# deadlock_timeout lets the deadlock test see PostgreSQL break the cycle quickly.
TEST_ONLY_CONF = "\n".join(["fsync = off", "synchronous_commit = off", "full_page_writes = off",
                            "deadlock_timeout = '100ms'", ""])


def _pg(cmd: list[str], what: str) -> None:
    res = subprocess.run(_as_pg_user(cmd), capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed ({' '.join(cmd)}):\n{res.stdout}{res.stderr}")


@dataclass
class Cluster:
    port: int
    password: str
    templates: dict[str, str] = field(default_factory=dict)  # service -> its migrated template database

    def dsn(self, database: str) -> str:
        return dsn(SUPERUSER, self.password, self.port, database)

    def template(self, service: str) -> str:
        """A database migrated like the service's own: framework chain, saga store chain where
        it is the saga store, its own chain, replica tables and publication."""
        if service not in self.templates:
            name = f"tpl_{service}"
            with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            migrations.upgrade(current().service(service), self.dsn(name))
            self.templates[service] = name
        return self.templates[service]

    def fresh(self, service: str) -> str:
        """A new database copied from the service's template; returns its DSN."""
        name = f"{service}_{uuid.uuid4().hex[:8]}"
        template = self.template(service)
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
        return self.dsn(name)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    bin_dir = find_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="cdc-db-tier-"))
    _chown(root)  # the PostgreSQL account (not root) owns the cluster
    data, log = root / "data", root / "postgres.log"
    password = secrets.token_urlsafe(16)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    _chown(pwfile)
    started = False
    try:
        _pg([str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--pwfile", str(pwfile),
             "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions", "--no-sync"], "initdb")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write("include_if_exists = 'cdc.conf'\n")
        for attempt in range(3):  # the port is free when picked, not necessarily when PostgreSQL binds it
            port = free_port()
            (data / "cdc.conf").write_text(cluster_conf(port) + TEST_ONLY_CONF)
            _chown(data / "cdc.conf")
            try:
                _pg([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"],
                    f"starting PostgreSQL (log: {log})")
                break
            except RuntimeError:
                if attempt == 2 or PORT_TAKEN not in log.read_text(errors="replace").lower():
                    raise
        started = True
        c = Cluster(port, password)
        with psycopg.connect(c.dsn("postgres"), autocommit=True) as conn:
            # publication.sync grants Debezium's role its reads, as in every service cluster
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN REPLICATION").format(sql.Identifier(DEBEZIUM_ROLE)))
        yield c
    finally:
        try:
            if started:
                stop_dir(data)
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fresh_db(cluster: Cluster) -> Callable[[str], str]:
    """fresh_db("payments") -> the DSN of a new database migrated as the payments service's."""
    return cluster.fresh
