"""The place-order saga on the real stack, orchestrated and choreographed: services write their
state and their messages in one local transaction, Debezium carries every message, real Faust
workers act. Failures come from data (a card over its limit, too little stock, an invoicing
rule, a country the carrier does not serve)."""
from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from confluent_kafka import Producer, TopicPartition

from cdc_testing.events import TopicReader, committed_offset
from cdc_testing.polling import poll
from cdc_testing.workers import WorkerProcess
from stack.kafka_client import ADMIN, access
from streams.sagas.topics import commands_topic, events_topic
from tests.integration.saga_helpers import MODES, finish, one, order, records, rows, saga_workers_of

pytestmark = pytest.mark.integration


RUNNING: dict[str, WorkerProcess] = {}  # the saga_mode fixture's workers
RESTARTED = "Restarting the worker in place"


@pytest.fixture(scope="module", params=MODES)
def saga_mode(request, stack_env, tmp_path_factory):
    """Every worker of the mode, for the module's tests; yields the mode."""
    log_dir = tmp_path_factory.mktemp(f"saga-workers-{request.param}")
    workers = saga_workers_of(request.param, stack_env, log_dir)
    RUNNING.clear()
    RUNNING.update(workers)
    try:
        for w in workers.values():
            w.wait_healthy()
        yield request.param
    finally:
        RUNNING.clear()
        for w in workers.values():
            w.stop()


def _restarts() -> dict[str, int]:
    return {name: w.log.read_text(errors="replace").count(RESTARTED) for name, w in RUNNING.items()}


def test_success_path_charges_reserves_invoices_and_ships_once(stack_env, saga_mode, unique):
    restarts = _restarts()
    order_id, sku = order(stack_env, unique, credit="1000", quantity=2, price="10.00")
    assert finish(stack_env, order_id) == ("COMPLETED", "APPROVED")
    r = records(stack_env, order_id, sku)
    assert r["payments"] == [("CHARGED", Decimal("20.00"))]
    assert r["stock"] == (8, 2) and r["reservations"] == [("RESERVED", 2)]
    assert r["invoices"] == [("ISSUED",)] and r["shipments"] == [("SCHEDULED",)]
    # a healthy path needs no second chance: every command was sent once, nothing timed out
    timeline = rows(stack_env["ORCHESTRATOR_OBSERVER_URL"],
                    "SELECT e.kind, e.detail FROM saga_events e JOIN saga_instances s ON s.id = e.saga_id "
                    "WHERE s.business_key = %s AND e.kind IN ('sent', 'timed_out')", (str(order_id),))
    assert timeline and all(kind == "sent" and detail.endswith("attempt 1") for kind, detail in timeline), timeline
    assert _restarts() == restarts, "a worker's watchdog restarted it on a healthy path"


# (failing step, order data, what each participant must show afterwards)
FAILURES = {
    "charge_payment": dict(credit="5", quantity=2, price="10.00"),          # card over its limit
    "reserve_stock": dict(credit="1000", quantity=50, price="1.00"),        # not enough stock
    "issue_invoice": dict(credit="100000", quantity=3, price="2000.00"),    # invoice over the limit
    "schedule_shipment": dict(credit="1000", quantity=1, price="10.00", country="AQ"),  # not served
}


@pytest.mark.parametrize("failing_step", list(FAILURES))
def test_failure_at_a_step_compensates_exactly_the_steps_before_in_reverse(stack_env, saga_mode, unique,
                                                                           failing_step):
    order_id, sku = order(stack_env, unique, **FAILURES[failing_step])
    assert finish(stack_env, order_id) == ("COMPENSATED", "REJECTED")
    r = records(stack_env, order_id, sku)
    steps = list(FAILURES)
    done = steps[:steps.index(failing_step)]
    total = Decimal(FAILURES[failing_step]["price"]) * FAILURES[failing_step]["quantity"]
    assert r["payments"] == ([("REFUNDED", total)] if "charge_payment" in done else []), "the charge refunded in full"
    assert r["stock"] == (10, 0), "stock on hand + reserved is back where it was"
    assert r["reservations"] == ([("RELEASED", FAILURES[failing_step]["quantity"])] if "reserve_stock" in done else [])
    assert r["invoices"] == ([("CANCELLED",)] if "issue_invoice" in done else [])
    assert r["shipments"] == []

    # The saga's timeline (the orchestrator's, or the monitor's record of the choreography):
    # compensations of exactly the done steps, newest first, each asked only after the previous one's reply.
    timeline = rows(stack_env["ORCHESTRATOR_OBSERVER_URL"],
                    "SELECT e.kind, e.step_name, e.action FROM saga_events e JOIN saga_instances s ON s.id = e.saga_id "
                    "WHERE s.payload->>'order_id' = %s AND e.action = 'compensation' ORDER BY e.at, e.id", (str(order_id),))
    expected = [step for step in reversed(["create_order", *done])]
    assert [(k, s) for k, s, _ in timeline] == [x for step in expected for x in (("sent", step), ("replied", step))]

    # The participants' own commit times say the same: undone in reverse order.
    undone_at = {
        "issue_invoice": one(stack_env["INVOICING_OBSERVER_URL"],
                             "SELECT changed_at FROM invoices WHERE orders_order_id = %s", (order_id,)),
        "reserve_stock": one(stack_env["INVENTORY_OBSERVER_URL"],
                             "SELECT changed_at FROM stock_reservations WHERE sku = %s", (sku,)),
        "charge_payment": one(stack_env["PAYMENTS_OBSERVER_URL"],
                              "SELECT refunded_at FROM payments WHERE orders_order_id = %s", (order_id,)),
        "create_order": one(stack_env["ORDERS_OBSERVER_URL"], "SELECT updated_at FROM orders WHERE id = %s", (order_id,)),
    }
    times = [undone_at[step][0] for step in expected]
    assert times == sorted(times), f"compensations committed out of order: {list(zip(expected, times, strict=True))}"


def test_a_malformed_saga_message_is_dead_lettered_with_its_reason_and_sagas_go_on(stack_env, saga_mode, unique):
    """A message the payments participant cannot read (a command, or a neighbour's event, that
    is not one) goes to dlq.saga.payments with the reason and where it came from; the group
    commits past it and the next order's saga completes."""
    kafka = access(stack_env, ADMIN)
    orchestrated = saga_mode == "orchestration"
    topic = commands_topic("payments") if orchestrated else events_topic("orders")
    group = "cdc-saga-payments" if orchestrated else "cdc-choreography-payments"
    dlq = TopicReader(kafka, ["dlq.saga.payments"])
    try:
        key = f'"poison-{unique}"'.encode()
        value = b'{"saga_id": "poison", "step": "one"}'
        event_type = b"ChargePayment" if orchestrated else b"SagaOutcome"
        delivered: list = []
        producer = Producer(kafka.config(**{"partitioner": "murmur2_random"}))
        producer.produce(topic, key=key, value=value, headers=[("id", unique.encode()), ("eventType", event_type)],
                         on_delivery=lambda err, msg: delivered.append(msg))
        assert producer.flush(10) == 0 and delivered
        letters = dlq.wait_for(lambda m: m.key() == key, 1, 60, "the malformed message on dlq.saga.payments")
        headers = dict(letters[0].headers())
        assert b"malformed" in headers["dlq.reason"] and b"validation error" in headers["dlq.reason"], headers
        assert headers["dlq.topic"] == topic.encode() and letters[0].value() == value, "the original bytes are kept"
        poison = TopicPartition(topic, delivered[0].partition())
        poll(lambda: committed_offset(kafka, group, poison), lambda off: off > delivered[0].offset(), 30,
             f"{group} committed past the malformed message at {poison.partition}:{delivered[0].offset()}")
    finally:
        dlq.close()
    order_id, _ = order(stack_env, unique, credit="1000", quantity=1, price="10.00")
    assert finish(stack_env, order_id) == ("COMPLETED", "APPROVED")


def test_participant_acts_once_per_key_and_a_late_action_after_its_compensation_does_nothing(stack_env, unique):
    """The participant runtime against the real payments database, without the broker."""
    import asyncio
    import time

    from schemas.saga import SagaCommand
    from services.ecommerce.payments.handlers import HANDLERS
    from streams.sagas.participant import COMPENSATED_FIRST, handle

    url = stack_env["PAYMENTS_DATABASE_URL"]
    charge = SagaCommand(saga_id=f"once-{unique}", saga="place-order", step=1, step_name="charge_payment", action="action",
                         participant="payments", name="ChargePayment", deadline=time.time() + 60,
                         payload={"order_id": 0, "customer_id": 0, "total": "5.00", "credit_limit": "10.00"})

    async def scenario() -> list:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            h = HANDLERS
            first = await handle(conn, h, charge)
            resent = await handle(conn, h, charge.model_copy(update={"attempt": 2}))  # a retry: new message, same key
            late = charge.model_copy(update={"saga_id": f"late-{unique}"})
            compensated = await handle(conn, h, late.model_copy(update={"action": "compensation", "name": "RefundPayment"}))
            arrived_late = await handle(conn, h, late)
            old = charge.model_copy(update={"saga_id": f"old-{unique}", "deadline": time.time() - 1})
            expired = await handle(conn, h, old)
            renewed = await handle(conn, h, old.model_copy(update={"attempt": 2, "deadline": time.time() + 60}))
            return [first, resent, compensated, arrived_late, expired, renewed]

    first, resent, compensated, arrived_late, expired, renewed = asyncio.run(scenario())
    assert first.outcome == resent.outcome == "succeeded"
    assert compensated.outcome == "succeeded"
    assert arrived_late.outcome == "failed" and arrived_late.reason == COMPENSATED_FIRST
    assert expired is None, "an expired action is dropped without an answer: the asker's timeout decides"
    assert renewed is not None and renewed.outcome == "succeeded", "the resend with a new deadline acts"
    charged = rows(stack_env["PAYMENTS_OBSERVER_URL"],
                   "SELECT saga_id, status FROM payments WHERE saga_id LIKE %s ORDER BY saga_id",
                   (f"%-{unique}",))
    assert charged == [(f"old-{unique}", "CHARGED"), (f"once-{unique}", "CHARGED")], \
        "charged once each; nothing for the late command, the expired one only on its resend"

