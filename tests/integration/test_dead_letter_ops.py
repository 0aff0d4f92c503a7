"""`cdc dlq` on the real stack: a rejected change re-driven after its cause is fixed reaches the
replica; a dry run sends nothing; a message that keeps failing is refused after MAX_REDRIVES;
a discard is recorded and the letter leaves the pending list."""
from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from cdc_testing.polling import poll
from cdc_testing.workers import WorkerProcess
from operate.redrive import MAX_REDRIVES
from stack.kafka_client import ADMIN, access
from tests.integration.conftest import REPO, cdc
from tests.integration.replication_helpers import SPEC, replica_rows

pytestmark = pytest.mark.integration
INVENTORY = "customers-to-inventory"


@pytest.fixture
def inventory_worker(stack_env, tmp_path):
    w = WorkerProcess(INVENTORY, stack_env, tmp_path)
    w.wait_healthy()
    yield w
    w.stop()


def letters(*args: str) -> list[dict]:
    return [json.loads(line) for line in cdc("dlq", "list", "--json", *args).splitlines() if line.strip()]


def end_offsets(env: dict[str, str], topic: str) -> dict[int, int]:
    consumer = Consumer(access(env, ADMIN).config(**{"group.id": "tests-unused"}))
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    finally:
        consumer.close()


def test_rejected_change_redriven_after_the_fix_reaches_the_replica(stack_env, inventory_worker, unique):
    pair = SPEC.pair(INVENTORY)
    name = f"reject-{unique}"
    with psycopg.connect(stack_env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
        # only this test's own row: another test's leftover change must not be dead-lettered here
        conn.execute(f"ALTER TABLE {pair.replica_table} ADD CONSTRAINT no_rejects_{unique} "
                     f"CHECK (name <> '{name}') NOT VALID")
    try:
        with psycopg.connect(stack_env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
            cid = conn.execute("INSERT INTO customers (name, email) VALUES (%s, %s) RETURNING id",
                               (name, f"{unique}@example.org")).fetchone()[0]
        mine = poll(lambda: [m for m in letters(pair.dead_letter_topic) if name in json.dumps(m["body"])],
                    lambda found: len(found) == 1, 60, f"one pending dead letter carrying customer {name}")[0]
        assert mine["reason"].startswith("rejected by inventory"), mine
        assert mine["origin_topic"] == pair.source_topic and mine["redrives"] == 0

        before = end_offsets(stack_env, pair.source_topic)
        dry = cdc("dlq", "redrive", "--id", mine["id"])
        assert "dry run: 1 would be re-driven" in dry, dry
        assert end_offsets(stack_env, pair.source_topic) == before, "a dry run must send nothing"
    finally:
        with psycopg.connect(stack_env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
            conn.execute(f"ALTER TABLE {pair.replica_table} DROP CONSTRAINT IF EXISTS no_rejects_{unique}")

    done = cdc("dlq", "redrive", "--id", mine["id"], "--why", "constraint dropped", "--who", "test", "--yes")
    assert "re-driven: 1" in done, done
    row = poll(lambda: replica_rows(stack_env, INVENTORY).get(cid), lambda r: r is not None, 60,
               f"customer {cid} in the inventory replica after the re-drive")
    assert name in row, row
    handled = [m for m in letters(pair.dead_letter_topic, "--all") if m["id"] == mine["id"]]
    assert handled and handled[0]["handled"] == "redrive", handled
    assert mine["id"] not in {m["id"] for m in letters(pair.dead_letter_topic)}, "a handled letter is not pending"
    again = subprocess.run([sys.executable, "-m", "cli", "dlq", "redrive", "--id", mine["id"], "--yes"],
                           cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "already" in again.stdout and "re-driven: 0" in again.stdout, again.stdout


def test_a_message_that_keeps_failing_is_refused_then_discarded(stack_env, inventory_worker, unique):
    pair = SPEC.pair(INVENTORY)
    producer = Producer(access(stack_env, ADMIN).config(**{"partitioner": "murmur2_random"}))
    key = f'{{"id": "poison-{unique}"}}'.encode()
    producer.produce(pair.source_topic, key=key, value=f"not json {unique}".encode())
    assert producer.flush(10) == 0

    def pending() -> list[dict]:
        return [m for m in letters(pair.dead_letter_topic) if m["body"] == f"not json {unique}"]

    for attempt in range(MAX_REDRIVES + 1):
        letter = poll(pending, lambda found: len(found) == 1, 60,
                      f"one pending dead letter of the poison (after {attempt} re-drives)")[0]
        assert letter["redrives"] == attempt, letter
        if attempt < MAX_REDRIVES:
            cdc("dlq", "redrive", "--id", letter["id"], "--why", f"try {attempt + 1}", "--yes")
    refused = subprocess.run([sys.executable, "-m", "cli", "dlq", "redrive", "--id", letter["id"], "--yes"],
                             cwd=REPO, capture_output=True, text=True)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"re-driven {MAX_REDRIVES} times" in refused.stdout.replace("\n", " "), refused.stdout

    out = cdc("dlq", "discard", "--id", letter["id"], "--why", "poison from a test", "--who", "test", "--yes")
    assert "discarded: 1" in out, out
    assert pending() == [], "a discarded letter is no longer pending"
    shown = json.loads(cdc("dlq", "show", letter["id"], "--json"))
    assert shown["handled"]["action"] == "discard" and shown["handled"]["why"] == "poison from a test", shown
    assert shown["origin"]["topic"] == pair.source_topic and shown["reason"].startswith("malformed"), shown
