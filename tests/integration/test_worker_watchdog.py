"""A saga worker that stops making progress restarts itself in place, and the command it was
stuck on is handled once after the restart (offsets are committed only after the effect)."""
from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from schemas.saga import SagaCommand
from services import outbox
from streams.sagas.topics import commands_aggregate
from tests.integration.saga_helpers import rows as _all
from tests.integration.workers import WorkerProcess
from tests.polling import poll

pytestmark = pytest.mark.integration
RESTARTED = "Restarting the worker in place"


def test_a_stuck_participant_restarts_in_place_and_handles_the_command_once(stack_env, tmp_path, unique):
    worker = WorkerProcess("payments", stack_env, tmp_path, saga=True, extra_env={"CDC_WORKER_STALL_RESTART": "4"})
    blocker = psycopg.connect(stack_env["PAYMENTS_DATABASE_URL"])
    try:
        worker.wait_healthy()
        pid = worker.proc.pid
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
        poll(lambda: worker.log.read_text(errors="replace"), lambda text: RESTARTED in text, 90,
             f"the payments worker to log {RESTARTED!r}")
        assert worker.proc.poll() is None and worker.proc.pid == pid, "restarted in place: same process, still running"
        blocker.rollback()  # unstuck
        charged = poll(lambda: _all(stack_env["PAYMENTS_OBSERVER_URL"],
                                    "SELECT status, amount::text FROM payments WHERE saga_id = %s", (saga_id,)),
                       lambda rows: bool(rows), 90, "the command handled after the restart")
        worker.wait_healthy()
        inbox = _all(stack_env["PAYMENTS_OBSERVER_URL"],
                     "SELECT action, outcome FROM saga_inbox WHERE saga_id = %s", (saga_id,))
        assert charged == [("CHARGED", "12.50")], f"charged exactly once, got {charged}"
        assert inbox == [("action", "succeeded")], inbox
    finally:
        blocker.close()
        worker.stop()
