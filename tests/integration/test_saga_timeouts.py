"""Saga timeouts on the real stack, in both modes: a participant down past the timeout (with the
pipeline healthy: a participant timeout, compensated), and a compensation that fails for good.
Outages of the pipeline itself: test_saga_outages.py."""
from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from cdc_testing.polling import poll
from cdc_testing.workers import REPO
from services.ecommerce.place_order import PLACE_ORDER
from tests.integration.saga_helpers import (
    MODES,
    coordinator,
    finish,
    one,
    order,
    records,
    rows,
    saga_worker,
    saga_workers_of,
    timeout_scale,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fast(stack_env, tmp_path_factory) -> tuple[dict[str, str], float]:
    """Step timeouts of 1 s instead of 10 s, longer on a busy box (measured: a capture hop, a
    worker's start-up); and how long a saga of these tests may then take to end."""
    scale = timeout_scale(stack_env, tmp_path_factory.mktemp("probe"))
    return {"CDC_SAGA_TIMEOUT_SCALE": str(scale)}, 90 + 600 * scale
RESERVE = next(s for s in PLACE_ORDER.steps if s.name == "reserve_stock")


def _saga_id(env, order_id: int) -> str:
    row = one(env["ORCHESTRATOR_OBSERVER_URL"], "SELECT id::text FROM saga_instances WHERE payload->>'order_id' = %s",
              (str(order_id),))
    assert row is not None
    return row[0]


def _sent(env, order_id: int, step_name: str, action: str) -> list[tuple]:
    return rows(env["ORCHESTRATOR_OBSERVER_URL"],
                "SELECT e.detail FROM saga_events e JOIN saga_instances s ON s.id = e.saga_id "
                "WHERE s.payload->>'order_id' = %s AND e.kind = 'sent' AND e.step_name = %s AND e.action = %s "
                "ORDER BY e.at, e.id", (str(order_id), step_name, action))


def _missed(env, order_id: int, step_name: str) -> list[tuple]:
    """(kind, detail) of the step's missed deadlines: timed out (participant) or delayed (pipeline)."""
    return rows(env["ORCHESTRATOR_OBSERVER_URL"],
                "SELECT e.kind, e.detail FROM saga_events e JOIN saga_instances s ON s.id = e.saga_id "
                "WHERE s.payload->>'order_id' = %s AND e.kind IN ('timed_out', 'delayed') AND e.step_name = %s "
                "ORDER BY e.at, e.id", (str(order_id), step_name))


@pytest.mark.parametrize("mode", MODES)
def test_participant_down_past_the_timeout_then_back_has_no_late_effect(stack_env, tmp_path, unique, mode, fast):
    """Inventory is down: the saga resends, gives up, compensates (the reservation too, as it may
    have happened) and refunds. When inventory comes back and reads the old commands, nothing
    is reserved: a late action after its compensation does nothing."""
    env, ends_within = fast
    names = (coordinator(mode), "payments", "invoicing", "shipping", "orders")
    workers = saga_workers_of(mode, stack_env, tmp_path, names, extra_env=env)
    try:
        for w in workers.values():
            w.wait_healthy()
        order_id, sku = order(stack_env, unique, credit="1000", quantity=2, price="10.00")
        saga_of = ("SELECT state FROM saga_instances WHERE payload->>'order_id' = %s", (str(order_id),))
        poll(lambda: one(stack_env["ORCHESTRATOR_OBSERVER_URL"], *saga_of), lambda r: r == ("COMPENSATING",), ends_within,
             "the saga giving up on the stopped inventory participant and compensating")
        # Exact, not a bound: inventory is down, so no answer can cut the resends short or add one.
        resent = _sent(stack_env, order_id, "reserve_stock", "action")
        assert len(resent) == RESERVE.retries + 1, f"ReserveStock asked once and resent {RESERVE.retries} times: {resent}"
        # the pipeline was healthy, only the participant was down: its timeout, not an infrastructure delay
        missed = _missed(stack_env, order_id, "reserve_stock")
        assert missed and missed[-1][0] == "timed_out" and missed[-1][1].startswith("participant timeout"), missed
        assert not any(kind == "delayed" and "inventory" in detail for kind, detail in missed), missed
        port = workers[coordinator(mode)].port
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'cdc_saga_deadlines_missed{cause="participant_timeout"}' in metrics, metrics
        workers["inventory"] = saga_worker("inventory", mode, stack_env, tmp_path, env)  # back, old messages waiting
        assert finish(stack_env, order_id, ends_within) == ("COMPENSATED", "REJECTED")
        r = records(stack_env, order_id, sku)
        assert r["reservations"] == [] and r["stock"] == (10, 0), "no reservation after the release"
        assert [s for s, _ in r["payments"]] == ["REFUNDED"], "charged, then refunded"
        inbox = rows(stack_env["INVENTORY_OBSERVER_URL"],
                     "SELECT action, outcome FROM saga_inbox WHERE saga_id = %s AND step = 2 ORDER BY action",
                     (_saga_id(stack_env, order_id),))
        assert inbox == [("action", "failed"), ("compensation", "succeeded")], inbox
    finally:
        for w in workers.values():
            w.stop()


@pytest.mark.parametrize("mode", MODES)
def test_a_compensation_that_fails_for_good_quarantines_its_saga_while_others_complete(stack_env, tmp_path, unique,
                                                                                       mode, fast):
    """A refund over 10,000.00 needs a person: the payments participant keeps refusing it. That
    saga ends FAILED, visible in `observe sagas` and the coordinator's metric; the others go on."""
    store = stack_env["ORCHESTRATOR_OBSERVER_URL"]
    failed_before = {r[0] for r in rows(store, "SELECT id::text FROM saga_instances WHERE state = 'FAILED'")}
    env, ends_within = fast
    workers = saga_workers_of(mode, stack_env, tmp_path, extra_env=env)
    try:
        for w in workers.values():
            w.wait_healthy()
        # 6 x 2,000.00: charged, reserved, then the invoice (over 5,000.00) is refused -> refund refused
        stuck_id, _ = order(stack_env, f"{unique}a", credit="100000", quantity=6, price="2000.00", on_hand=10)
        fine_id, _ = order(stack_env, f"{unique}b", credit="1000", quantity=1, price="10.00")
        assert finish(stack_env, fine_id, ends_within) == ("COMPLETED", "APPROVED")
        state, status = finish(stack_env, stuck_id, ends_within)
        assert (state, status) == ("FAILED", "PENDING"), "quarantined: the order waits for a person"
        stuck_saga = _saga_id(stack_env, stuck_id)
        reason = one(store, "SELECT reason FROM saga_instances WHERE id::text = %s", (stuck_saga,))
        assert reason is not None and "refunds over 10000.00 need a person" in reason[0], reason
        # Exact, not a bound: a refusal and a timeout each use up one attempt, and a late answer
        # of an older attempt counts for the current one, however slow the box.
        refunds = _sent(stack_env, stuck_id, "charge_payment", "compensation")
        assert len(refunds) == PLACE_ORDER.compensation_retries + 1, f"the refund asked, then resent after back-offs: {refunds}"
        # This test's saga, and only it, is the new FAILED one (earlier runs and the other mode left theirs)
        failed_now = {r[0] for r in rows(store, "SELECT id::text FROM saga_instances WHERE state = 'FAILED'")}
        assert failed_now - failed_before == {stuck_saga}, (stuck_saga, failed_now - failed_before)
        port = workers[coordinator(mode)].port
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        failed = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith('cdc_sagas{state="FAILED"}')]
        assert failed == [len(failed_now)], f"cdc_sagas FAILED should count {len(failed_now)}: {failed}"
        # with as many FAILED tolerated as there were before, this one alone makes observe fail, and it names it
        res = subprocess.run([sys.executable, "-m", "cli", "observe", "sagas", "--stuck-after", "3600",
                              "--max-failed", str(len(failed_now) - 1)], cwd=REPO, capture_output=True, text=True,
                             env={**os.environ, **stack_env, "COLUMNS": "250"})
        assert res.returncode == 1 and stuck_saga in res.stdout, res.stdout + res.stderr
    finally:
        for w in workers.values():
            w.stop()
