"""200 mixed orders through the place-order saga, orchestrated and choreographed, with the
coordinator (orchestrator or monitor) and a participant killed (-9) and restarted mid-run: the
business invariants hold, every saga ends, and replaying every topic the participants consume
(commands, or their neighbours' events) from the earliest offset changes nothing: not the
business data, not an inbox row or a watch, not the coordinator's record, and publishes only
the recorded answers again (orchestrated) or nothing (choreographed)."""
from __future__ import annotations

import random
import threading
from decimal import Decimal

import psycopg
import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from cdc_testing.events import TopicReader
from cdc_testing.polling import poll
from observe.replication import consumer_lag
from schemas.outbox import parse_outbox
from schemas.saga import SagaReply
from services.ecommerce.orders.commands import OrderLine, place_order
from stack.kafka_client import ADMIN, KafkaAccess, access
from streams.sagas.choreography_runtime import monitor_subscriptions, subscriptions
from streams.sagas.enabled import enabled
from streams.sagas.topics import commands_topic, events_topic, replies_topic
from tests.integration.offsets import end_offsets
from tests.integration.saga_helpers import MODES, coordinator, saga_worker, wait_captured

pytestmark = pytest.mark.integration
PARTICIPANTS = ("payments", "inventory", "invoicing", "shipping", "orders")
STOCK = 40


def _all(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def _place_orders(env, unique: str, skus: list[str], n: int, halfway: threading.Event, placed: list, errors: list):
    rng = random.Random(11)
    try:
        with psycopg.connect(env["ORDERS_DATABASE_URL"]) as conn:
            customers = []
            for i, credit in enumerate(["15", "200", "1000", "100000"] * 5):
                row = conn.execute("INSERT INTO customers (name, email, credit_limit) VALUES (%s, %s, %s) RETURNING id",
                                   (f"inv-{unique}-{i}", f"inv-{unique}-{i}@example.org", credit)).fetchone()
                customers.append(row[0])
            conn.commit()
            for i in range(n):
                price = rng.choice(["5.00", "20.00", "60.00", "2400.00"])  # 3+ of the last: over the invoice limit
                lines = [OrderLine(rng.choice(skus), rng.randint(1, 4), Decimal(price))]
                country = rng.choice(["ES", "GB", "FR", "US", "AQ"])
                placed.append(place_order(conn, rng.choice(customers), lines, country))
                if i == n // 2:
                    halfway.set()
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)
        halfway.set()


def _business_state(env, order_ids: list[int], skus: list[str]) -> dict:
    ids = [str(i) for i in order_ids]
    return {
        "orders": dict(_all(env["ORDERS_OBSERVER_URL"], "SELECT id, status FROM orders WHERE id::text = ANY(%s)", (ids,))),
        "totals": dict(_all(env["ORDERS_OBSERVER_URL"], "SELECT id, total FROM orders WHERE id::text = ANY(%s)", (ids,))),
        "sagas": dict(_all(env["ORCHESTRATOR_OBSERVER_URL"],
                           "SELECT (payload->>'order_id')::bigint, state FROM saga_instances "
                           "WHERE payload->>'order_id' = ANY(%s)", (ids,))),
        "payments": sorted(_all(env["PAYMENTS_OBSERVER_URL"], "SELECT orders_order_id, status, amount FROM payments "
                                "WHERE orders_order_id::text = ANY(%s)", (ids,))),
        "stock": dict((sku, (on_hand, reserved)) for sku, on_hand, reserved in _all(
            env["INVENTORY_OBSERVER_URL"], "SELECT sku, on_hand, reserved FROM stock_items WHERE sku = ANY(%s)", (skus,))),
        "reservations": sorted(_all(env["INVENTORY_OBSERVER_URL"], "SELECT saga_id, sku, quantity, status "
                                    "FROM stock_reservations WHERE sku = ANY(%s)", (skus,))),
        "invoices": sorted(_all(env["INVOICING_OBSERVER_URL"], "SELECT orders_order_id, status FROM invoices "
                                "WHERE orders_order_id::text = ANY(%s)", (ids,))),
        "shipments": sorted(_all(env["SHIPPING_OBSERVER_URL"], "SELECT orders_order_id, status FROM shipments "
                                 "WHERE orders_order_id::text = ANY(%s)", (ids,))),
    }


def _check_invariants(state: dict, order_ids: list[int], skus: list[str]) -> None:
    for oid in order_ids:
        status, saga = state["orders"][oid], state["sagas"].get(oid)
        assert (saga, status) in (("COMPLETED", "APPROVED"), ("COMPENSATED", "REJECTED")), (oid, saga, status)
        charged = sum(a for o, s, a in state["payments"] if o == oid and s == "CHARGED")
        assert charged == (state["totals"][oid] if status == "APPROVED" else 0), f"order {oid}: charged {charged}"
        invoices = [s for o, s in state["invoices"] if o == oid]
        assert invoices.count("ISSUED") == (1 if status == "APPROVED" else 0), (oid, invoices)
        shipments = [s for o, s in state["shipments"] if o == oid]
        assert shipments.count("SCHEDULED") == (1 if status == "APPROVED" else 0), (oid, shipments)
    for sku in skus:
        on_hand, reserved = state["stock"][sku]
        assert on_hand + reserved == STOCK, f"{sku}: on hand {on_hand} + reserved {reserved} != {STOCK}"
        held = sum(q for _, s, q, st in state["reservations"] if s == sku and st == "RESERVED")
        assert held == reserved, f"{sku}: reservations hold {held}, stock says {reserved}"


def _reset_to_earliest(kafka: KafkaAccess, group: str, topic: str) -> None:
    admin = AdminClient(kafka.config())
    parts = [TopicPartition(topic, p, 0) for p in admin.list_topics(topic, timeout=10).topics[topic].partitions]
    for fut in admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, parts)]).values():
        fut.result(timeout=30)


def _consumed(mode: str, worker: str) -> tuple[str, list[str]]:
    """(consumer group, topics) of a saga worker (a participant or the coordinator) in a mode."""
    sagas = enabled()
    if mode == "orchestration":
        if worker == "orchestrator":
            return "cdc-saga-orchestrator", [*sagas.start_topics, *(replies_topic(p.name) for p in sagas.plugins)]
        return f"cdc-saga-{worker}", [commands_topic(worker)]
    if worker == "monitor":
        return "cdc-choreography-monitor", monitor_subscriptions(sagas)
    return f"cdc-choreography-{worker}", subscriptions(sagas, worker)


def _quiet(env, kafka: KafkaAccess, mode: str, saga_ids: set[str]) -> None:
    """Until these sagas' messages stop moving: every service's connector has published what its
    outbox holds, and every group (the coordinator's too) has read its topics to the end; twice
    in a row with nothing of these sagas published in between, so an answer published by the last
    reads is read as well. Other tests' sagas may still be moving on the shared topics (a watch of
    theirs resent or delayed): their messages do not count."""
    groups = dict(_consumed(mode, w) for w in (coordinator(mode), *PARTICIPANTS))
    topics = sorted({t for ts in groups.values() for t in ts})
    last: dict | None = None
    ours: list = []
    for _ in range(6):
        for svc in (*PARTICIPANTS, "orchestrator"):
            wait_captured(env, svc, timeout=120)
        for group, ts in groups.items():
            poll(lambda group=group, ts=ts: [consumer_lag(kafka, group, t) for t in ts],
                 lambda lags: not any(lags), 180, f"{group} to read all of {ts}")
        ends = {t: end_offsets(kafka, t) for t in topics}
        if ends == last:
            return
        if last is not None:
            ours = _published(kafka, {(t, p): off for t, parts in last.items() for p, off in parts.items()}, saga_ids)
            if not ours:
                return
        last = ends
    raise AssertionError(f"these sagas' topics kept growing: {[(m.event_type, m.payload) for m in ours[:5]]}")


def _records(env, saga_ids: list[str]) -> dict:
    """Each participant's inbox and watches, and the saga store's instances and timelines, of
    these sagas: what a repeated command or event must not change."""
    out: dict = {}
    for name in PARTICIPANTS:
        url = env[f"{name.upper()}_OBSERVER_URL"]
        out[f"{name} inbox"] = _all(url, "SELECT saga_id, step, action, outcome, reason, handled_at FROM saga_inbox "
                                    "WHERE saga_id = ANY(%s) ORDER BY 1, 2, 3", (saga_ids,))
        out[f"{name} watches"] = _all(url, "SELECT saga_id, step, phase, attempt, deadline, state, retry_pending, "
                                      "cancel_only, reason, updated_at FROM saga_watches WHERE saga_id = ANY(%s) "
                                      "ORDER BY 1, 2, 3", (saga_ids,))
    store = env["ORCHESTRATOR_OBSERVER_URL"]
    out["saga instances"] = _all(store, "SELECT * FROM saga_instances WHERE id::text = ANY(%s) ORDER BY id", (saga_ids,))
    out["saga events"] = _all(store, "SELECT saga_id::text, count(*) FROM saga_events WHERE saga_id::text = ANY(%s) "
                              "GROUP BY 1 ORDER BY 1", (saga_ids,))
    return out


def _published(kafka: KafkaAccess, since: dict, saga_ids: set[str]) -> list:
    """The outbox messages of these sagas published after `since` on every saga topic: commands,
    replies, choreography events."""
    reader = TopicReader(kafka, sorted({t for t, _ in since}), start=since)
    try:
        return [parse_outbox(m.key(), m.value(), list(m.headers() or [])) for m in reader.read_to_end()
                if m.value() is not None and any(i.encode() in (m.key() or b"") for i in saga_ids)]
    finally:
        reader.close()


@pytest.mark.parametrize("mode", MODES)
def test_200_orders_with_crashes_keep_the_invariants_and_replay_changes_nothing(stack_env, tmp_path, unique, mode):
    skus = [f"INV-{unique}-{i}" for i in range(5)]
    with psycopg.connect(stack_env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
        for sku in skus:
            conn.execute("INSERT INTO stock_items (sku, on_hand) VALUES (%s, %s)", (sku, STOCK))
    boss = coordinator(mode)
    workers = {n: saga_worker(n, mode, stack_env, tmp_path) for n in (boss, *PARTICIPANTS)}
    placed: list[int] = []
    errors: list = []
    try:
        for w in workers.values():
            w.wait_healthy()
        halfway = threading.Event()
        producer = threading.Thread(target=_place_orders, args=(stack_env, unique, skus, 200, halfway, placed, errors))
        producer.start()
        assert halfway.wait(120), "orders were not placed"
        for name in (boss, "inventory"):  # crash mid-run, restart
            workers[name].kill9()
            workers[name] = saga_worker(name, mode, stack_env, tmp_path)
        for name in (boss, "inventory"):
            workers[name].wait_healthy()
        producer.join(180)
        assert not producer.is_alive() and not errors, errors
        assert len(placed) == 200

        ids = [str(o) for o in placed]
        poll(lambda: _all(stack_env["ORCHESTRATOR_OBSERVER_URL"],
                          "SELECT state, count(*) FROM saga_instances WHERE payload->>'order_id' = ANY(%s) "
                          "GROUP BY state", (ids,)),
             lambda rows: sum(c for s, c in rows if s in ("COMPLETED", "COMPENSATED")) == 200, 300,
             "all 200 sagas COMPLETED or COMPENSATED")
        before = _business_state(stack_env, placed, skus)
        _check_invariants(before, placed, skus)
        outcomes = set(before["orders"].values())
        assert outcomes == {"APPROVED", "REJECTED"}, f"the mix should both succeed and fail: {outcomes}"

        # Replay everything the participants consume from the start: they must act no second
        # time, record nothing new, and publish nothing new but the same answers to repeated
        # commands (orchestrated; a choreographed repeat publishes nothing); the coordinator,
        # reading those, changes nothing.
        kafka = access(stack_env, ADMIN)
        saga_ids = [r[0] for r in _all(stack_env["ORCHESTRATOR_OBSERVER_URL"],
                                        "SELECT id::text FROM saga_instances WHERE payload->>'order_id' = ANY(%s)", (ids,))]
        assert len(saga_ids) == 200
        _quiet(stack_env, kafka, mode, set(saga_ids))
        recorded = _records(stack_env, saga_ids)
        outbound = [*(commands_topic(p) for p in PARTICIPANTS), *(replies_topic(p.name) for p in enabled().plugins),
                    *(events_topic(p) for p in PARTICIPANTS)]
        existing = AdminClient(kafka.config()).list_topics(timeout=10).topics
        since = {(t, p): off for t in outbound if t in existing for p, off in end_offsets(kafka, t).items()}
        for name in PARTICIPANTS:
            workers[name].stop()
        for name in PARTICIPANTS:
            group, topics = _consumed(mode, name)
            for topic in topics:
                _reset_to_earliest(kafka, group, topic)
                assert consumer_lag(kafka, group, topic) > 0 or not any(end_offsets(kafka, topic).values()), topic
        for name in PARTICIPANTS:
            workers[name] = saga_worker(name, mode, stack_env, tmp_path)
        _quiet(stack_env, kafka, mode, set(saga_ids))
        assert _business_state(stack_env, placed, skus) == before, "a replay of the commands changed something"
        after = _records(stack_env, saga_ids)
        changed = {k: {"before only": sorted(set(recorded[k]) - set(after[k]), key=str)[:3],
                       "after only": sorted(set(after[k]) - set(recorded[k]), key=str)[:3]}
                   for k in recorded if after[k] != recorded[k]}
        assert not changed, f"a replay changed {sorted(changed)}: {changed}"
        assert recorded["payments inbox"], "the inbox comparison compared nothing"
        if mode == "choreography":
            assert any(recorded[f"{p} watches"] for p in PARTICIPANTS), "the watch comparison compared nothing"
        again = _published(kafka, since, set(saga_ids))
        answers = {(r[0], r[1], r[2], r[3], r[4]) for p in PARTICIPANTS for r in recorded[f"{p} inbox"]}
        if mode == "choreography":
            assert again == [], f"a repeated ask published {[(m.event_type, m.payload) for m in again[:5]]}"
        else:
            replies = [SagaReply.model_validate(m.payload) for m in again]
            assert again and all(m.event_type == "SagaReply" for m in again), [m.event_type for m in again[:5]]
            new = [r for r in replies if (r.saga_id, r.step, r.action, r.outcome, r.reason) not in answers]
            assert not new, f"replies that are not the recorded answers: {new[:5]}"
    finally:
        for w in workers.values():
            w.stop()
