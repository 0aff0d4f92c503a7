"""`make down` then `make up` resumes capture where it stopped: no re-snapshot, no duplicate
events, and changes made while Connect was down arrive."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import psycopg
import pytest

from cdc_testing.events import TopicReader
from cdc_testing.polling import poll
from schemas.envelope import ChangeEvent, parse_change
from stack.kafka_client import ADMIN, access
from stack.processes import pid_alive
from tests.integration.conftest import make

pytestmark = [pytest.mark.integration, pytest.mark.destructive]
TOPIC = "orders.public.customers"


def _insert(url: str, email: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("INSERT INTO customers (name, email) VALUES ('restart', %s) RETURNING id",
                            (email,)).fetchone()[0]


def _key(cid: int) -> bytes:
    return f'{{"id":{cid}}}'.encode()


def test_down_up_resumes_without_resnapshot_or_duplicates(stack_env, reader, unique):
    url = stack_env["ORDERS_DATABASE_URL"]
    before = reader(TOPIC)
    a = _insert(url, f"a-{unique}@example.org")
    before.wait_for(lambda m: m.key() == _key(a), 1, 60, f"the insert of customer {a} before the restart")

    # Connect goes down first; a change made now must still arrive after the restart.
    pid_file = Path(stack_env["CDC_STACK_DIR"]) / "run" / "connect.pid"
    pid = int(pid_file.read_text().split()[0])
    os.kill(pid, signal.SIGTERM)
    poll(lambda: pid_alive(pid), lambda alive: not alive, 90, "Kafka Connect to exit after SIGTERM")
    b = _insert(url, f"b-{unique}@example.org")

    make("down")
    make("up")

    after = TopicReader(access(stack_env, ADMIN), [TOPIC], start=before.start)
    try:
        after.wait_for(lambda m: m.key() == _key(b), 1, 180, f"the insert of customer {b}, made while Connect was down")
        c = _insert(url, f"c-{unique}@example.org")
        after.wait_for(lambda m: m.key() == _key(c), 1, 60, f"the insert of customer {c} after the restart")
        seen = after.read_to_end()
    finally:
        after.close()

    events = [parse_change(m.key(), m.value()) for m in seen if m.value() is not None]
    changes = [e for e in events if isinstance(e, ChangeEvent)]
    assert not [e for e in changes if e.op == "r"], "a snapshot ran again after the restart"
    for cid in (a, b, c):
        count = sum(1 for e in changes if e.row["id"] == cid)
        assert count == 1, f"customer {cid}: expected exactly one change event, saw {count}"
