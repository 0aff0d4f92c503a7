"""Replication of orders.customers into inventory, invoicing and shipping by real Faust workers:
convergence, replay, crash, poison messages, takeover and backfill."""
from __future__ import annotations

import threading
import time

import httpx
import psycopg
import pytest
from confluent_kafka import Producer, TopicPartition

from cdc_testing.events import TopicReader, committed_offset
from cdc_testing.polling import poll
from cdc_testing.workers import WorkerProcess
from observe.replication import consumer_lag
from schemas.envelope import ChangeEvent, parse_change
from stack.kafka_client import ADMIN, access
from tests.integration.conftest import cdc
from tests.integration.offsets import CommittedWatch, acknowledged_but_not_applied, committed, end_offsets
from tests.integration.replication_helpers import (
    SPEC,
    PositionWatch,
    assert_converged,
    random_burst,
    replica_rows,
    reset_group_to_earliest,
)

pytestmark = pytest.mark.integration
ALL = [p.name for p in SPEC.pairs]
INVENTORY = "customers-to-inventory"


@pytest.fixture
def workers(stack_env, tmp_path):
    started: list[WorkerProcess] = []

    def start(pair: str, wait: bool = True) -> WorkerProcess:
        w = WorkerProcess(pair, stack_env, tmp_path)
        started.append(w)
        if wait:
            w.wait_healthy()
        return w

    yield start
    for w in started:
        w.stop()


def test_burst_converges_without_sensitive_columns_and_replay_changes_nothing(stack_env, workers, unique):
    running = [workers(p) for p in ALL]
    random_burst(stack_env["ORDERS_DATABASE_URL"], 2000, seed=1, tag=unique)
    assert_converged(stack_env, ALL)

    for pair in SPEC.pairs:
        with psycopg.connect(stack_env[f"{pair.target.service.upper()}_OBSERVER_URL"]) as conn:
            cols = {r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name IN (%s, %s)",
                (pair.replica_table, pair.target.table)).fetchall()}
        assert cols and not cols & {"document_number", "phone"}, f"{pair.name} holds sensitive columns: {cols}"

    before = {p: replica_rows(stack_env, p) for p in ALL}
    for w in running:
        w.stop()
    for p in ALL:
        reset_group_to_earliest(access(stack_env, ADMIN), p)
        assert consumer_lag(access(stack_env, ADMIN), SPEC.pair(p).group_id, SPEC.pair(p).source_topic) > 0
    for p in ALL:
        workers(p)
    assert_converged(stack_env, ALL)
    after = {p: replica_rows(stack_env, p) for p in ALL}
    for p in ALL:
        assert after[p] == before[p], f"{p}: a replay from offset 0 changed the replica"


def _thread(target, *args, errors: list) -> threading.Thread:
    """A thread whose exception is kept, so a test cannot pass because its helper died."""
    def run() -> None:
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
    return threading.Thread(target=run)


def _holding_unacknowledged_work(env, w: WorkerProcess, pair: str) -> dict:
    """The worker has fetched changes it has not acknowledged yet: its own lag (end - next to
    apply) and the group's committed lag are both > 0, and it has already applied some."""
    p = SPEC.pair(pair)
    health = w.health()
    return {**health, "group_lag": consumer_lag(access(env, ADMIN), p.group_id, p.source_topic),
            "events": _metric(w, "cdc_replication_events_total")}


def test_kill_9_while_holding_unacknowledged_work_loses_nothing_and_no_row_regresses(stack_env, workers, unique):
    """kill -9 lands while the worker holds changes it fetched but has not acknowledged: at that
    moment every change below the group's committed offsets is in the replica (acknowledged means
    durable), and the next worker, redelivered the rest, converges with no row going back."""
    pair = SPEC.pair(INVENTORY)
    kafka = access(stack_env, ADMIN)
    first = workers(INVENTORY)
    since = end_offsets(kafka, pair.source_topic)
    errors: list = []
    burst = _thread(random_burst, stack_env["ORDERS_DATABASE_URL"], 1500, 2, unique, None, errors=errors)
    watch = PositionWatch(stack_env, INVENTORY).start()
    burst.start()
    try:
        poll(lambda: _holding_unacknowledged_work(stack_env, first, INVENTORY),
             lambda h: h.get("lag", 0) > 0 and h["group_lag"] > 0 and h["events"] > 0, 60,
             "the worker applying the burst with fetched changes not yet acknowledged")
        first.kill9()
        acked = committed(kafka, pair.group_id, pair.source_topic)  # nobody applies or commits now
        lost = acknowledged_but_not_applied(kafka, stack_env, pair, since, acked)
        assert not lost, f"acknowledged before durable ({len(lost)}): {lost[:5]}"
        workers(INVENTORY)
        burst.join(120)
        assert not burst.is_alive(), "the burst did not finish"
        assert_converged(stack_env, [INVENTORY])
    finally:
        watch.close()
        burst.join(10)
    assert not errors, errors
    watch.stop()


def test_malformed_message_goes_to_dead_letter_topic_and_later_events_apply(stack_env, workers, unique):
    pair = SPEC.pair(INVENTORY)
    w = workers(INVENTORY)
    dlq = TopicReader(access(stack_env, ADMIN), [pair.dead_letter_topic])
    try:
        producer = Producer(access(stack_env, ADMIN).config(**{"partitioner": "murmur2_random"}))
        bad_key = f'{{"id": "poison-{unique}"}}'.encode()
        delivered = []
        producer.produce(pair.source_topic, key=bad_key, value=b"{this is not json",
                         on_delivery=lambda err, msg: delivered.append(msg))
        assert producer.flush(10) == 0 and delivered
        with psycopg.connect(stack_env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
            cid = conn.execute("INSERT INTO customers (name, email) VALUES (%s, %s) RETURNING id",
                               (f"after-poison-{unique}", f"{unique}@example.org")).fetchone()[0]
        letters = dlq.wait_for(lambda m: m.key() == bad_key, 1, 60, "the poison message on the dead-letter topic")
        headers = dict(letters[0].headers())
        assert b"not JSON" in headers["dlq.reason"], headers
        assert headers["dlq.topic"] == pair.source_topic.encode()
        assert letters[0].value() == b"{this is not json", "the original bytes are kept"
        poll(lambda: replica_rows(stack_env, INVENTORY).get(cid), lambda row: row is not None, 60,
             f"customer {cid}, inserted after the poison message, in the inventory replica")
        assert w.health()["status"] == 200
        metrics = httpx.get(f"http://127.0.0.1:{w.port}/metrics", timeout=5).text
        count = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                 if line.startswith('cdc_replication_dead_letters_total{pair="customers-to-inventory"}')]
        assert count and count[0] >= 1, metrics
        # the poison's own partition moved on: the group committed past it
        poison_tp = TopicPartition(pair.source_topic, delivered[0].partition())
        kafka = access(stack_env, ADMIN)
        poll(lambda: committed_offset(kafka, pair.group_id, poison_tp), lambda off: off > delivered[0].offset(), 30,
             f"the group's committed offset on partition {poison_tp.partition} past the poison at {delivered[0].offset()}")
    finally:
        dlq.close()


def test_two_workers_share_partitions_and_one_takes_over(stack_env, workers, unique):
    a = workers(INVENTORY)
    b = workers(INVENTORY)
    both = poll(lambda: (a.health(), b.health()),
                lambda hs: all(h.get("status") == 200 for h in hs), 60, "both workers holding partitions")
    assigned = [set(h["assigned"]) for h in both]
    assert assigned[0] and assigned[1] and not assigned[0] & assigned[1], assigned
    halfway = threading.Event()
    errors: list = []
    burst = _thread(random_burst, stack_env["ORDERS_DATABASE_URL"], 800, 3, unique, halfway, errors=errors)
    burst.start()
    assert halfway.wait(60)
    a.kill9()
    poll(b.health, lambda h: len(h.get("assigned", [])) == 3, 60, "the surviving worker holding all 3 partitions")
    burst.join(120)
    assert not burst.is_alive() and not errors, errors
    assert_converged(stack_env, [INVENTORY])


def test_wiped_replica_is_backfilled_with_one_command(stack_env, workers, unique):
    workers(INVENTORY)
    random_burst(stack_env["ORDERS_DATABASE_URL"], 100, seed=4, tag=unique)
    assert_converged(stack_env, [INVENTORY])
    with psycopg.connect(stack_env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("DELETE FROM customers_replica")
    cdc("backfill", INVENTORY, "--timeout", "120")
    assert_converged(stack_env, [INVENTORY])


def _snapshot_read_key(message) -> int | None:
    """The customer id of an incremental-snapshot read (a backfill's row), else None."""
    event = parse_change(message.key(), message.value())
    if isinstance(event, ChangeEvent) and event.op == "r" and event.source.snapshot == "incremental":
        return int(event.row["id"])
    return None


def _read_until_reread(topic: TopicReader, keys: set[int], timeout: float) -> dict[int, int]:
    """Read the topic (each message parsed once) until every key had a snapshot read; returns
    key -> the read's timestamp (ms)."""
    reads: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while not keys <= set(reads):
        if time.monotonic() > deadline:
            missing = sorted(keys - set(reads))
            raise AssertionError(f"after {timeout:.0f}s expected snapshot reads of the {len(keys)} customers that "
                                 f"existed before the backfill; read {len(keys & set(reads))}, missing e.g. "
                                 f"{missing[:10]} ({len(topic.seen)} messages seen)")
        for m in topic.consumer.consume(500, timeout=0.5):
            if m.error():
                continue
            topic.seen.append(m)
            key = _snapshot_read_key(m)
            if key is not None:
                reads[key] = m.timestamp()[1]
    return reads


def _writes_until(url: str, tag: str, stop: threading.Event) -> None:
    """Rounds of inserts, updates and deletes on the source until told to stop."""
    rounds = 0
    while not stop.is_set():
        random_burst(url, 100, 100 + rounds, f"{tag}{rounds}")
        rounds += 1


def test_backfill_over_a_live_non_empty_replica_with_concurrent_writes_converges_and_no_row_goes_back(
        stack_env, workers, reader, unique):
    """The worker keeps applying live changes while `cdc backfill` re-reads every source row
    through Debezium's incremental snapshot, and the source keeps changing the whole time. Every
    row that existed before is read again; the replica never takes an older version of a row (a
    snapshot read overtaken by a live change, or the reverse) and ends with the source's checksum."""
    pair = SPEC.pair(INVENTORY)
    orders = stack_env["ORDERS_DATABASE_URL"]
    workers(INVENTORY)
    random_burst(orders, 300, seed=7, tag=f"{unique}a")
    assert_converged(stack_env, [INVENTORY])
    with psycopg.connect(orders) as conn:
        before = {r[0] for r in conn.execute("SELECT id FROM customers").fetchall()}
    assert before and len(replica_rows(stack_env, INVENTORY)) >= len(before), "the replica is not empty"
    topic = reader(pair.source_topic)
    watch = PositionWatch(stack_env, INVENTORY).start()
    stop, errors = threading.Event(), []
    writes = _thread(_writes_until, orders, f"{unique}b", stop, errors=errors)
    writes.start()
    try:
        cdc("backfill", INVENTORY, "--no-wait")
        # a burst's deletes touch only its own rows: every row from before must be read again
        reads = _read_until_reread(topic, before, 240)
    finally:
        stop.set()
        writes.join(60)
        watch.close()
    assert not writes.is_alive() and not errors, errors
    first, last = min(reads.values()), max(reads.values())
    live = [m for m in topic.seen if first <= m.timestamp()[1] <= last and _snapshot_read_key(m) is None]
    assert live, "no live change reached the topic while the snapshot ran: nothing concurrent was tested"
    assert_converged(stack_env, [INVENTORY])
    watch.stop()


def _metric(worker: WorkerProcess, name: str) -> float:
    """A counter of the worker's /metrics (0 while unreachable or not yet counted)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{worker.port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.destructive
def test_replica_database_down_acknowledges_nothing_and_loses_nothing_through_a_rebalance_and_a_kill_9(
        stack_env, workers, unique):
    """While the shipping database is down the pair's committed offsets stay where the last
    durable batch left them, read with a plain client the whole time: however long the workers
    retry, through a rebalance (a second worker joins) and a kill -9 of the worker holding the
    batches it could not apply. Once the database is back every change is applied, and only
    then acknowledged."""
    from connectors.connect_api import ConnectClient

    shipping = "customers-to-shipping"
    pair = SPEC.pair(shipping)
    kafka = access(stack_env, ADMIN)
    retries = "cdc_replication_retries_total"
    w = workers(shipping)
    random_burst(stack_env["ORDERS_DATABASE_URL"], 300, 5, f"{unique}a")
    assert_converged(stack_env, [shipping])
    durable = committed(kafka, pair.group_id, pair.source_topic)
    assert durable == end_offsets(kafka, pair.source_topic), "converged: acknowledged up to the end"
    watch = CommittedWatch(kafka, pair.group_id, pair.source_topic)
    cdc("db", "stop", "shipping")
    watch.start()
    try:
        random_burst(stack_env["ORDERS_DATABASE_URL"], 500, 6, f"{unique}b")  # changes while the replica is down
        poll(lambda: end_offsets(kafka, pair.source_topic), lambda ends: ends != durable, 60,
             "the changes made while the replica is down on the topic")
        poll(lambda: _metric(w, retries), lambda n: n > 0, 60, "the worker retrying against the stopped replica database")
        # A second worker joins while the first is retrying: the rebalance revokes partitions
        # whose batches were never acknowledged; the new owner must get them again.
        # (Faust's view of the old owner may stay stale while it retries; idempotent apply makes a
        # batch applied by both harmless, and what matters is that none is lost.)
        second = workers(shipping, wait=False)
        poll(second.health, lambda h: bool(h.get("assigned")), 60,
             "the new worker holding partitions revoked from the retrying one")
        w.kill9()  # it holds fetched batches it could not apply: they must come back to the survivor
        poll(second.health, lambda h: len(h.get("assigned", [])) == 3, 90,
             "the surviving worker holding all 3 partitions after the kill")
        poll(lambda: _metric(second, retries), lambda n: n > 0, 60, "the survivor retrying the redelivered changes")
        watch.wait_samples(25)  # >= 5 s more: several commit intervals (1 s) with changes fetched, none durable
    finally:
        try:
            highest = watch.stop()
        finally:
            cdc("db", "start", "shipping")
    ahead = {p: (off, durable[p]) for p, off in highest.items() if off > durable[p]}
    assert not ahead, f"acknowledged while the replica database was down: partition -> (committed, durable) {ahead}"
    assert_converged(stack_env, [shipping])
    after = committed(kafka, pair.group_id, pair.source_topic)
    assert after == end_offsets(kafka, pair.source_topic) and after != durable, (durable, after)
    client = ConnectClient(stack_env["CONNECT_URL"])
    try:  # the shipping source connector lost its database too; it must be back
        client.wait_running(["shipping-source"], timeout=120)
    finally:
        client.close()
