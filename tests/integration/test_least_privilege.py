"""Each service's role reaches only its own database; Debezium's role can read what it captures
and write only its signal and heartbeat tables; the observer only reads."""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from services.registry import current

pytestmark = pytest.mark.integration


def _retarget(url: str, other_url: str) -> str:
    """Same credentials as `url`, aimed at the host, port and database of `other_url`."""
    mine, other = urlsplit(url), urlsplit(other_url)
    netloc = f"{mine.username}:{mine.password}@{other.hostname}:{other.port}"
    return urlunsplit((mine.scheme, netloc, other.path, "", ""))


@pytest.mark.parametrize("svc", [s.name for s in current().services])
def test_service_role_cannot_connect_to_other_service_databases(stack_env, svc):
    own = stack_env[f"{svc.upper()}_DATABASE_URL"]
    with psycopg.connect(own, connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == f"{svc}_service"
    for other in current().services:
        if other.name == svc:
            continue
        target = _retarget(own, stack_env[f"{other.env_prefix}_DATABASE_URL"])
        with pytest.raises(psycopg.OperationalError, match="password authentication failed|does not exist"):
            psycopg.connect(target, connect_timeout=5).close()


def test_service_role_cannot_connect_to_the_maintenance_database(stack_env):
    url = stack_env["ORDERS_DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(url, connect_timeout=5).close()


def test_passwords_are_required_even_on_loopback(stack_env):
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
