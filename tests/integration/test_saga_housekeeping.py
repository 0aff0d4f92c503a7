"""Housekeeping of the saga databases on the real stack: an outbox row is deleted only after
Debezium has published it (never while the connector is paused), and inbox rows live as long
as the topics can redeliver their messages, plus a day."""
from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest

from cdc_testing.polling import poll
from services import outbox
from stack.kafka_client import ADMIN, access
from streams.sagas.retention import Housekeeping
from streams.sagas.topics import commands_topic
from streams.topic_retention import REDELIVERY_MARGIN_S, redelivery_keep_seconds
from tests.integration.saga_helpers import one, rows, saga_worker

pytestmark = pytest.mark.integration
SLOT = "cdc_payments"
CONNECTOR = "payments-source"


def _run(hk: Housekeeping, url: str) -> None:
    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await hk.run(conn)
    asyncio.run(go())


def _connector(env, verb: str) -> None:
    base = env["CONNECT_URL"]
    httpx.put(f"{base}/connectors/{CONNECTOR}/{verb}", timeout=30).raise_for_status()
    want = "PAUSED" if verb == "pause" else "RUNNING"
    poll(lambda: httpx.get(f"{base}/connectors/{CONNECTOR}/status", timeout=30).json(),
         lambda s: s["connector"]["state"] == want and all(t["state"] == want for t in s["tasks"]), 60,
         f"{CONNECTOR} {want}")


def _present(env, row_id: str) -> bool:
    return one(env["PAYMENTS_OBSERVER_URL"], "SELECT 1 FROM outbox WHERE id = %s", (row_id,)) is not None


def test_an_outbox_row_is_purged_only_after_debezium_published_it(stack_env, reader, unique, tmp_path):
    url = stack_env["PAYMENTS_DATABASE_URL"]
    r = reader("outbox.event.payments-events")
    hk = Housekeeping(slot=SLOT, inbox_keep_s=None)
    _connector(stack_env, "pause")
    try:
        with psycopg.connect(url) as conn:
            outbox.write(conn, "payments-events", unique, "HousekeepingProbe", {"tag": unique})
            conn.commit()
            row = conn.execute("SELECT id::text, pg_current_wal_lsn() > (SELECT confirmed_flush_lsn FROM "
                               "pg_replication_slots WHERE slot_name = %s) FROM outbox WHERE aggregateid = %s",
                               (SLOT, unique)).fetchone()
        assert row is not None and row[1], "the paused connector has not confirmed the probe's commit"
        row_id = row[0]
        for _ in range(3):
            _run(hk, url)
        assert _present(stack_env, row_id), "purged while the connector was paused: the event would be lost"
    finally:
        _connector(stack_env, "resume")
    poll(lambda: (_run(hk, url), _present(stack_env, row_id))[1], lambda present: not present, 60,
         "the probe purged once the connector published it")
    msgs = r.wait_for(lambda m: m.key() == f'"{unique}"'.encode(), count=1, timeout=30,
                      expected="the purged probe on outbox.event.payment")
    assert b"HousekeepingProbe" in dict(msgs[0].headers() or [])["eventType"]
    assert hk.outbox_purged >= 1

    # The saga workers run the same housekeeping on a timer, and say so in /healthz.
    worker = saga_worker("payments", "orchestration", stack_env, tmp_path, {"CDC_SAGA_HOUSEKEEPING_EVERY": "1"})
    try:
        worker.wait_healthy()
        poll(worker.health, lambda h: h.get("housekeeping", {}).get("runs", 0) >= 2, 60,
             "two housekeeping runs reported by the payments worker")
    finally:
        worker.stop()


def test_inbox_rows_live_as_long_as_the_topics_retain_messages_plus_a_day(stack_env, unique):
    url = stack_env["PAYMENTS_DATABASE_URL"]
    keep = redelivery_keep_seconds(access(stack_env, ADMIN), [commands_topic("payments")])
    # the broker keeps 7 days (log.retention.hours=168) in segments that roll after 7 days (log.roll.hours=168)
    assert keep == 14 * 86_400 + REDELIVERY_MARGIN_S, f"retention + segment time + a day; got {keep}"
    with psycopg.connect(url, autocommit=True) as conn:
        for saga, age_days in ((f"old-{unique}", 16), (f"young-{unique}", 14.5)):
            conn.execute("INSERT INTO saga_inbox (saga_id, step, action, outcome, handled_at) VALUES "
                         "(%s, 1, 'action', 'succeeded', now() - make_interval(secs => %s))", (saga, age_days * 86_400))
    _run(Housekeeping(slot=SLOT, inbox_keep_s=keep), url)
    left = {s for (s,) in rows(stack_env["PAYMENTS_OBSERVER_URL"], "SELECT saga_id FROM saga_inbox WHERE saga_id LIKE %s",
                               (f"%-{unique}",))}
    assert left == {f"young-{unique}"}, "the 16-day-old row goes; the 14.5-day-old one may still be redelivered"
