"""Each service's role reaches only its own database; Debezium's role can read what it captures
and write only its signal and heartbeat tables; the observer only reads."""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from services.registry import ServiceSpec, current
from stack.postgres import SUPERUSER
from stack.roles import dsn
from stack.secrets import read_env_file, secret_name
from stack.settings import StackSettings

pytestmark = pytest.mark.integration


def _retarget(url: str, other_url: str) -> str:
    """Same credentials as `url`, aimed at the host, port and database of `other_url`."""
    mine, other = urlsplit(url), urlsplit(other_url)
    netloc = f"{mine.username}:{mine.password}@{other.hostname}:{other.port}"
    return urlunsplit((mine.scheme, netloc, other.path, "", ""))


def _superuser(svc: ServiceSpec) -> str:
    settings = StackSettings.from_env()
    return dsn(SUPERUSER, read_env_file(settings.secrets_file)[secret_name(svc, "superuser")],
               settings.pg_ports[svc.name], "postgres")


@pytest.mark.parametrize("svc", [s.name for s in current().services])
def test_another_services_role_with_its_password_is_refused_by_the_owners_database(stack_env, svc):
    """Every other service's role is tried on the owner's cluster with that role's own password.
    The clusters are separate, so the role does not exist there and would be refused whatever
    the grants; it is created for the test (as if the clusters were shared), so that what
    refuses it is the owner's database: CONNECT is granted to its own roles only."""
    owner = current().service(svc)
    own = stack_env[f"{owner.env_prefix}_DATABASE_URL"]
    with psycopg.connect(own, connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == owner.role
    with psycopg.connect(_superuser(owner), autocommit=True, connect_timeout=5) as su:
        for other in current().services:
            if other.name == svc:
                continue
            theirs = urlsplit(stack_env[f"{other.env_prefix}_DATABASE_URL"])
            assert theirs.username == other.role
            exists = su.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (other.role,)).fetchone()
            assert exists is None, f"{other.role} exists on the {svc} cluster: the clusters are not separate"
            su.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(other.role),
                                                                          sql.Literal(theirs.password)))
            try:
                with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
                    psycopg.connect(_retarget(theirs.geturl(), own), connect_timeout=5).close()
            finally:
                su.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(other.role)))


def test_service_role_cannot_connect_to_the_maintenance_database(stack_env):
    url = stack_env["ORDERS_DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(url, connect_timeout=5).close()


def test_passwords_are_required_even_on_loopback(stack_env, monkeypatch):
    # libpq would fill in a password from the environment or a password file: neither may help here
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/dev/null")
    url = urlsplit(stack_env["ORDERS_DATABASE_URL"])
    no_pw = f"postgresql://{url.username}@{url.hostname}:{url.port}{url.path}"
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(no_pw, connect_timeout=5).close()


@pytest.mark.parametrize("statement", [
    "INSERT INTO customers (name, email) VALUES ('x', 'x@example.org')",
    "UPDATE customers SET name = 'x'",
    "DELETE FROM customers",
    "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES (gen_random_uuid(), 'a', 'b', 'c', '{}')",
    "CREATE TABLE sneaky (id int)",
])
def test_debezium_role_cannot_write_business_tables(stack_env, statement):
    with psycopg.connect(stack_env["ORDERS_DEBEZIUM_URL"], connect_timeout=5) as conn, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_debezium_role_can_read_captured_tables_and_write_its_own(stack_env, unique):
    with psycopg.connect(stack_env["ORDERS_DEBEZIUM_URL"], connect_timeout=5) as conn:
        conn.execute("SELECT count(*) FROM customers").fetchone()
        conn.execute("INSERT INTO debezium_heartbeat (id, ts) VALUES (1, now()) "
                     "ON CONFLICT (id) DO UPDATE SET ts = EXCLUDED.ts")
        conn.execute("INSERT INTO debezium_signal (id, type, data) VALUES (%s, 'log', '{\"message\": \"test\"}')",
                     (f"test-{unique}",))
        conn.rollback()  # nothing to keep: the grants are what is tested


def test_observer_reads_but_cannot_write(stack_env):
    with psycopg.connect(stack_env["ORDERS_OBSERVER_URL"], connect_timeout=5) as conn:
        conn.execute("SELECT count(*) FROM customers").fetchone()
        slots = conn.execute("SELECT slot_name FROM pg_replication_slots").fetchall()
        assert ("cdc_orders",) in slots
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM customers")
