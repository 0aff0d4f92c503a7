"""Switching the saga mode: the new mode's order reader starts where the old one stopped, so an
order the orchestrator already started is not started again by the choreography."""
from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition

from cdc_testing.events import committed_offset
from cdc_testing.polling import poll
from services.ecommerce.place_order import PLACE_ORDER, PLACE_ORDER_SAGA
from stack.kafka_client import ADMIN, access
from streams.sagas.handover import GROUP_PREFIX, starter
from streams.sagas.orchestrator import saga_id_for
from tests.integration.saga_helpers import finish, order, rows, saga_worker

pytestmark = pytest.mark.integration
# the consumer groups that start place-order sagas from OrderPlaced, per mode
ORCHESTRATION_STARTER = GROUP_PREFIX["orchestration"] + starter(PLACE_ORDER_SAGA, "orchestration")
CHOREOGRAPHY_STARTER = GROUP_PREFIX["choreography"] + starter(PLACE_ORDER_SAGA, "choreography")


def test_the_choreography_starts_where_the_orchestrator_stopped(stack_env, reader, tmp_path, unique):
    kafka = access(stack_env, ADMIN)
    placed = reader("outbox.event.order")
    orchestrator = saga_worker("orchestrator", "orchestration", stack_env, tmp_path)
    try:
        orchestrator.wait_healthy()
        order_id, _ = order(stack_env, unique, credit="5", quantity=2, price="10.00")  # a card over its limit
        msg = placed.wait_for(lambda m: m.key() == f'"{order_id}"'.encode(), 1, 60, f"OrderPlaced of {order_id}")[0]
        tp = TopicPartition("outbox.event.order", msg.partition())
        poll(lambda: committed_offset(kafka, ORCHESTRATION_STARTER, tp), lambda o: o > msg.offset(), 60,
             "the orchestrator to start the saga and commit past its OrderPlaced")
    finally:
        orchestrator.stop()

    saga = saga_id_for(PLACE_ORDER.name, str(order_id))
    payments = saga_worker("payments", "choreography", stack_env, tmp_path)
    try:
        payments.wait_healthy()
        assert committed_offset(kafka, CHOREOGRAPHY_STARTER, tp) > msg.offset(), \
            "the choreography's order reader starts past the order the orchestrator took"
        assert rows(stack_env["PAYMENTS_OBSERVER_URL"], "SELECT step, action FROM saga_inbox WHERE saga_id = %s",
                    (saga,)) == [], "the choreography did not act on an order the orchestrator had started"
    finally:
        payments.stop()

    # The orchestrated saga ends in its own mode once its workers are back.
    workers = [saga_worker(n, "orchestration", stack_env, tmp_path) for n in ("orchestrator", "payments", "orders")]
    try:
        for w in workers:
            w.wait_healthy()
        assert finish(stack_env, order_id) == ("COMPENSATED", "REJECTED")
    finally:
        for w in workers:
            w.stop()
