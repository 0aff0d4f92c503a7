"""A saga worker that stops making progress restarts itself in place, the command it was stuck
on stays unacknowledged through the restart, and it is handled once after it (offsets are
committed only after the effect)."""
from __future__ import annotations

import time
import uuid

import psycopg
import pytest
from confluent_kafka import TopicPartition

from cdc_testing.events import TopicReader, committed_offset
from cdc_testing.polling import poll
from cdc_testing.workers import WorkerProcess
from schemas.saga import SagaCommand
from services import outbox
from stack.kafka_client import ADMIN, access
from streams.sagas.topics import commands_aggregate, commands_topic, replies_topic
from tests.integration.offsets import CommittedWatch
from tests.integration.saga_helpers import rows as _all
from tests.integration.saga_helpers import wait_captured

pytestmark = pytest.mark.integration
RESTARTED = "Restarting the worker in place"
GROUP = "cdc-saga-payments"


def test_a_stuck_participant_restarts_in_place_unacknowledged_and_handles_the_command_once(stack_env, tmp_path, unique):
    kafka = access(stack_env, ADMIN)
    commands = TopicReader(kafka, [commands_topic("payments")])
    replies = TopicReader(kafka, [replies_topic("place-order")])
    worker = WorkerProcess("payments", stack_env, tmp_path, saga=True, extra_env={"CDC_WORKER_STALL_RESTART": "4"})
    blocker = psycopg.connect(stack_env["PAYMENTS_DATABASE_URL"])
    try:
        worker.wait_healthy()
        # The handler will wait on this lock: no error, no retry, no progress (a stuck worker).
        blocker.execute("LOCK TABLE payments IN ACCESS EXCLUSIVE MODE")
        saga_id = str(uuid.uuid4())
        cmd = SagaCommand(saga_id=saga_id, saga="place-order", step=1, step_name="charge_payment", action="action",
                          participant="payments", name="ChargePayment", deadline=time.time() + 300,
                          payload={"order_id": 900_000_000 + int(unique[:6], 16), "customer_id": 1, "total": "12.50",
                                   "credit_limit": "100.00"})
        with psycopg.connect(stack_env["ORCHESTRATOR_DATABASE_URL"]) as conn:
            outbox.write(conn, commands_aggregate("payments"), saga_id, cmd.name, cmd.model_dump())
            conn.commit()
        (sent,) = commands.wait_for(lambda m: saga_id.encode() in (m.key() or b""), 1, 60, "the command on its topic")
        where = TopicPartition(sent.topic(), sent.partition())
        watch = CommittedWatch(kafka, GROUP, where.topic).start()
        try:
            poll(lambda: worker.log.read_text(errors="replace"), lambda text: RESTARTED in text, 90,
                 f"the payments worker to log {RESTARTED!r}")
            # in place: the process we started is still the one running (execv keeps it), it did not exit
            assert worker.proc.poll() is None, f"the worker exited {worker.proc.returncode} instead:\n{worker.tail()}"
            watch.wait_samples(10)
        finally:
            stuck_at = watch.stop().get(where.partition, -1)
        assert stuck_at <= sent.offset(), \
            f"the stuck command at {sent.offset()} was acknowledged ({stuck_at}) before its effect"
        blocker.rollback()  # unstuck
        charged = poll(lambda: _all(stack_env["PAYMENTS_OBSERVER_URL"],
                                    "SELECT status, amount::text FROM payments WHERE saga_id = %s", (saga_id,)),
                       lambda rows: bool(rows), 90, "the command handled after the restart")
        poll(lambda: committed_offset(kafka, GROUP, where), lambda off: off > sent.offset(), 60,
             f"the command at {sent.offset()} acknowledged once its effect committed")
        # Handled once: a participant answers every command it handles, a repeat included (with
        # the outcome recorded the first time), so a second handling would show as a second reply.
        # (The payment itself cannot show it: payments.saga_id is UNIQUE whatever the code does.)
        wait_captured(stack_env, "payments")
        answered = [m for m in replies.read_to_end() if saga_id.encode() in (m.key() or b"")]
        assert len(answered) == 1, f"expected one reply to the command, got {[m.value() for m in answered]}"
        assert b'"succeeded"' in answered[0].value(), answered[0].value()
        inbox = _all(stack_env["PAYMENTS_OBSERVER_URL"],
                     "SELECT action, outcome FROM saga_inbox WHERE saga_id = %s", (saga_id,))
        assert charged == [("CHARGED", "12.50")], f"charged exactly once, got {charged}"
        assert inbox == [("action", "succeeded")], inbox
    finally:
        blocker.close()
        worker.stop()
        commands.close()
        replies.close()
