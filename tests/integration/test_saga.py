"""The place-order saga, orchestrated, on the real stack: services write their state and their
messages in one local transaction, Debezium carries every message, real Faust workers act.
Failures come from data (a card over its limit, too little stock, an invoicing rule, a country
the carrier does not serve)."""
from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from services.orders.commands import OrderLine, place_order
from tests.integration.workers import WorkerProcess, diagnose
from tests.polling import poll

pytestmark = pytest.mark.integration
SAGA_WORKERS = ("orchestrator", "payments", "inventory", "invoicing", "shipping", "orders")


@pytest.fixture(scope="module")
def saga_workers(stack_env, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("saga-workers")
    workers = [WorkerProcess(name, stack_env, log_dir, saga=True) for name in SAGA_WORKERS]
    try:
        for w in workers:
            w.wait_healthy()
        yield workers
    finally:
        for w in workers:
            w.stop()


def _one(url: str, query: str, params: tuple = ()) -> tuple | None:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchone()


def _all(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def _order(env, unique: str, credit: str, quantity: int, price: str, country: str = "ES",
           on_hand: int = 10) -> tuple[int, str]:
    sku = f"SKU-{unique}"
    with psycopg.connect(env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO stock_items (sku, on_hand) VALUES (%s, %s)", (sku, on_hand))
    with psycopg.connect(env["ORDERS_DATABASE_URL"]) as conn:
        row = conn.execute("INSERT INTO customers (name, email, credit_limit) VALUES (%s, %s, %s) RETURNING id",
                           (f"saga-{unique}", f"{unique}@example.org", credit)).fetchone()
        conn.commit()
        order_id = place_order(conn, row[0], [OrderLine(sku, quantity, Decimal(price))], country)
    return order_id, sku


def _finish(env, order_id: int) -> tuple[str, str]:
    """Wait until the saga ended; returns (saga state, order status)."""
    try:
        state = poll(lambda: _one(env["ORCHESTRATOR_OBSERVER_URL"], "SELECT state, reason FROM saga_instances "
                                  "WHERE payload->>'order_id' = %s", (str(order_id),)),
                     lambda row: row is not None and row[0] in ("COMPLETED", "COMPENSATED", "FAILED"), 90,
                     f"the saga of order {order_id} to end")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnose()}") from None
    status = _one(env["ORDERS_OBSERVER_URL"], "SELECT status FROM orders WHERE id = %s", (order_id,))
    return state[0], status[0]


def _records(env, order_id: int, sku: str) -> dict:
    return {
        "payments": _all(env["PAYMENTS_OBSERVER_URL"], "SELECT status, amount FROM payments WHERE orders_order_id = %s",
                         (order_id,)),
        "stock": _one(env["INVENTORY_OBSERVER_URL"], "SELECT on_hand, reserved FROM stock_items WHERE sku = %s", (sku,)),
        "reservations": _all(env["INVENTORY_OBSERVER_URL"], "SELECT status, quantity FROM stock_reservations WHERE sku = %s",
                             (sku,)),
        "invoices": _all(env["INVOICING_OBSERVER_URL"], "SELECT status FROM invoices WHERE orders_order_id = %s",
                         (order_id,)),
        "shipments": _all(env["SHIPPING_OBSERVER_URL"], "SELECT status FROM shipments WHERE orders_order_id = %s",
                          (order_id,)),
    }


def test_success_path_charges_reserves_invoices_and_ships_once(stack_env, saga_workers, unique):
    order_id, sku = _order(stack_env, unique, credit="1000", quantity=2, price="10.00")
    assert _finish(stack_env, order_id) == ("COMPLETED", "APPROVED")
    r = _records(stack_env, order_id, sku)
    assert r["payments"] == [("CHARGED", Decimal("20.00"))]
    assert r["stock"] == (8, 2) and r["reservations"] == [("RESERVED", 2)]
    assert r["invoices"] == [("ISSUED",)] and r["shipments"] == [("SCHEDULED",)]


# (failing step, order data, what each participant must show afterwards)
FAILURES = {
    "charge_payment": dict(credit="5", quantity=2, price="10.00"),          # card over its limit
    "reserve_stock": dict(credit="1000", quantity=50, price="1.00"),        # not enough stock
    "issue_invoice": dict(credit="100000", quantity=3, price="2000.00"),    # invoice over the limit
    "schedule_shipment": dict(credit="1000", quantity=1, price="10.00", country="AQ"),  # not served
}


@pytest.mark.parametrize("failing_step", list(FAILURES))
def test_failure_at_a_step_compensates_exactly_the_steps_before_in_reverse(stack_env, saga_workers, unique,
                                                                           failing_step):
    order_id, sku = _order(stack_env, unique, **FAILURES[failing_step])
    assert _finish(stack_env, order_id) == ("COMPENSATED", "REJECTED")
    r = _records(stack_env, order_id, sku)
    steps = list(FAILURES)
    done = steps[:steps.index(failing_step)]
    assert r["payments"] == ([("REFUNDED", r["payments"][0][1])] if "charge_payment" in done else [])
    assert r["stock"] == (10, 0), "stock on hand + reserved is back where it was"
    assert r["reservations"] == ([("RELEASED", FAILURES[failing_step]["quantity"])] if "reserve_stock" in done else [])
    assert r["invoices"] == ([("CANCELLED",)] if "issue_invoice" in done else [])
    assert r["shipments"] == []

    # The orchestrator's timeline: compensations of exactly the done steps, newest first,
    # each sent only after the previous one's reply.
    timeline = _all(stack_env["ORCHESTRATOR_OBSERVER_URL"],
                    "SELECT e.kind, e.step_name, e.action FROM saga_events e JOIN saga_instances s ON s.id = e.saga_id "
                    "WHERE s.payload->>'order_id' = %s AND e.action = 'compensation' ORDER BY e.id", (str(order_id),))
    expected = [step for step in reversed(["create_order", *done])]
    assert [(k, s) for k, s, _ in timeline] == [x for step in expected for x in (("sent", step), ("replied", step))]

    # The participants' own commit times say the same: undone in reverse order.
    undone_at = {
        "issue_invoice": _one(stack_env["INVOICING_OBSERVER_URL"],
                              "SELECT changed_at FROM invoices WHERE orders_order_id = %s", (order_id,)),
        "reserve_stock": _one(stack_env["INVENTORY_OBSERVER_URL"],
                              "SELECT changed_at FROM stock_reservations WHERE sku = %s", (sku,)),
        "charge_payment": _one(stack_env["PAYMENTS_OBSERVER_URL"],
                               "SELECT refunded_at FROM payments WHERE orders_order_id = %s", (order_id,)),
        "create_order": _one(stack_env["ORDERS_OBSERVER_URL"], "SELECT updated_at FROM orders WHERE id = %s", (order_id,)),
    }
    times = [undone_at[step][0] for step in expected]
    assert times == sorted(times), f"compensations committed out of order: {list(zip(expected, times, strict=True))}"


def test_participant_acts_once_per_key_and_a_late_action_after_its_compensation_does_nothing(stack_env, unique):
    """The participant runtime against the real payments database, without the broker."""
    import asyncio
    import time

    from schemas.saga import SagaCommand
    from streams.sagas.handlers import HANDLERS
    from streams.sagas.participant import COMPENSATED_FIRST, handle

    url = stack_env["PAYMENTS_DATABASE_URL"]
    charge = SagaCommand(saga_id=f"once-{unique}", step=1, step_name="charge_payment", action="action",
                         participant="payments", name="ChargePayment", deadline=time.time() + 60,
                         payload={"order_id": 0, "customer_id": 0, "total": "5.00", "credit_limit": "10.00"})

    async def scenario() -> list:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            h = HANDLERS["payments"]
            first = await handle(conn, h, charge)
            resent = await handle(conn, h, charge.model_copy(update={"attempt": 2}))  # a retry: new message, same key
            late = charge.model_copy(update={"saga_id": f"late-{unique}"})
            compensated = await handle(conn, h, late.model_copy(update={"action": "compensation", "name": "RefundPayment"}))
            arrived_late = await handle(conn, h, late)
            expired = await handle(conn, h, charge.model_copy(update={"saga_id": f"old-{unique}", "deadline": time.time() - 1}))
            return [first, resent, compensated, arrived_late, expired]

    first, resent, compensated, arrived_late, expired = asyncio.run(scenario())
    assert first.outcome == resent.outcome == "succeeded"
    assert compensated.outcome == "succeeded"
    assert arrived_late.outcome == "failed" and arrived_late.reason == COMPENSATED_FIRST
    assert expired.outcome == "failed" and "deadline passed" in expired.reason
    rows = _all(stack_env["PAYMENTS_OBSERVER_URL"], "SELECT saga_id, status FROM payments WHERE saga_id LIKE %s",
                (f"%-{unique}",))
    assert rows == [(f"once-{unique}", "CHARGED")], "charged once; nothing for the late or the expired command"

