"""Replication slots cannot fill the disk or lose changes unseen: a quiet database's slot keeps
advancing (Debezium's heartbeat, connectors/base.json), `cdc observe` fails past its WAL threshold,
and a slot dropped and recreated behind a stopped connector is reported, not skipped silently."""
from __future__ import annotations

import subprocess
import sys

import httpx
import psycopg
import pytest

from cdc_testing.polling import poll
from connectors.configs import load_all
from connectors.connect_api import ConnectClient
from observe.slots import check_slots
from services.registry import current
from stack.roles import dsn
from stack.secrets import read_env_file, secret_name
from stack.settings import StackSettings
from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration
QUIET = "shipping"  # no test of this module writes to it


def _slot(stack_env, service: str):
    with psycopg.connect(stack_env[f"{service.upper()}_OBSERVER_URL"], autocommit=True) as conn:
        return conn.execute("SELECT confirmed_flush_lsn - '0/0'::pg_lsn, "
                            "(SELECT ts FROM debezium_heartbeat WHERE id = 1) "
                            "FROM pg_replication_slots WHERE slot_name = %s", (f"cdc_{service}",)).fetchone()


def _superuser(service: str) -> str:
    settings = StackSettings.from_env()
    svc = current().service(service)
    return dsn("postgres", read_env_file(settings.secrets_file)[secret_name(svc, "superuser")],
               settings.pg_ports[svc.name], svc.database)


def test_a_quiet_databases_slot_keeps_advancing(stack_env):
    first = _slot(stack_env, QUIET)
    assert first is not None, f"no slot cdc_{QUIET}"
    seen = [first]
    for _ in range(2):  # twice: it keeps moving, not one late flush
        seen.append(poll(lambda: _slot(stack_env, QUIET), lambda s: s[0] > seen[-1][0] and s[1] > seen[-1][1], 30,
                         f"the confirmed position of cdc_{QUIET} to advance past {seen[-1]} with nothing written"))


def test_observe_fails_when_a_slot_retains_more_wal_than_allowed(stack_env):
    assert all(not r.problems for r in check_slots(stack_env)), [r.problems for r in check_slots(stack_env)]
    res = subprocess.run([sys.executable, "-m", "cli", "observe", "--timeout", "1", "--max-slot-lag-bytes", "1"],
                         cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"slot cdc_{QUIET} ({QUIET}-source): " in res.stdout and "of WAL retained > 1" in res.stdout, res.stdout


def test_a_dropped_and_recreated_slot_is_reported(stack_env):
    svc = current().service(QUIET)
    conn_file = next(c for c in load_all() if c.topic_prefix == QUIET)
    connect = httpx.Client(base_url=stack_env["CONNECT_URL"], timeout=30)
    client = ConnectClient(stack_env["CONNECT_URL"])

    def report():
        return next(r for r in check_slots(stack_env, services={QUIET}))

    try:
        connect.put(f"/connectors/{conn_file.name}/stop").raise_for_status()
        with psycopg.connect(_superuser(QUIET), autocommit=True) as su:
            poll(lambda: su.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                                    (svc.slot,)).fetchone(), lambda r: r is not None and not r[0], 60,
                 "the stopped connector to release its slot")
            su.execute("SELECT pg_drop_replication_slot(%s)", (svc.slot,))
            missing = report()
            assert not missing.exists and any("slot missing" in p for p in missing.problems), missing
            # changes made while there is no slot are what a recreated slot skips
            su.execute("INSERT INTO debezium_heartbeat (id, ts) VALUES (1, now()) "
                       "ON CONFLICT (id) DO UPDATE SET ts = EXCLUDED.ts")
            su.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (svc.slot,))
        recreated = report()
        assert any("dropped and recreated" in p for p in recreated.problems), recreated
        # Debezium refuses to stream from it too (it does not skip the gap silently)
        connect.put(f"/connectors/{conn_file.name}/resume").raise_for_status()
        failed = poll(lambda: client.status(conn_file.name), lambda s: s.failed, 60,
                      "the connector to refuse the recreated slot")
        assert "no longer available on the server" in (failed.trace or ""), failed.trace
    finally:
        # the operator's remedy: forget the stored offset, which re-snapshots (idempotent downstream)
        connect.put(f"/connectors/{conn_file.name}/stop").raise_for_status()
        poll(lambda: client.status(conn_file.name).connector, lambda s: s == "STOPPED", 60, "the connector stopped")
        connect.delete(f"/connectors/{conn_file.name}/offsets").raise_for_status()
        connect.put(f"/connectors/{conn_file.name}/resume").raise_for_status()
        client.wait_running([conn_file.name], timeout=120)
        poll(report, lambda r: not r.problems, 60, "the slot reported healthy again")
        client.close()
        connect.close()
