"""The place-order saga, given/expect, without any broker."""
from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import ValidationError

from services.ecommerce.place_order import PLACE_ORDER
from streams.sagas import machine
from streams.sagas.definition import SagaDefinition, Step
from streams.sagas.machine import NotRetryable, SagaStatus
from streams.sagas.testing import SagaScenario

ACTIONS = ["ChargePayment", "ReserveStock", "IssueInvoice", "ScheduleShipment", "ApproveOrder"]
STEPS = ["charge_payment", "reserve_stock", "issue_invoice", "schedule_shipment", "approve_order"]
COMPENSATIONS = {"create_order": "RejectOrder", "charge_payment": "RefundPayment", "reserve_stock": "ReleaseStock",
                 "issue_invoice": "CancelInvoice", "schedule_shipment": "CancelShipment"}


def test_success_path_sends_each_command_once_in_order():
    s = SagaScenario(PLACE_ORDER).start().expect_commands("ChargePayment")
    for step, nxt in zip(STEPS, [*ACTIONS[1:], None], strict=True):
        s.reply(step)
        if nxt:
            s.expect_commands(nxt)
    s.expect_status(SagaStatus.COMPLETED).expect_commands()
    assert [c.name for c in s.sent] == ACTIONS


@pytest.mark.parametrize("k", range(len(STEPS) - 1))
def test_failure_at_step_k_compensates_exactly_the_steps_before_in_reverse(k):
    s = SagaScenario(PLACE_ORDER).start().complete_steps(*STEPS[:k])
    s.reply(STEPS[k], outcome="failed", reason="declined")
    expected = [COMPENSATIONS[name] for name in (["create_order"] + STEPS[:k])][::-1]
    for i, comp in enumerate(expected):
        s.expect_commands(comp).expect_status(SagaStatus.COMPENSATING)
        step = (["create_order"] + STEPS[:k])[::-1][i]
        s.reply(step, action="compensation")
    s.expect_status(SagaStatus.COMPENSATED)
    assert [c.name for c in s.sent if c.action == "compensation"] == expected
    assert "declined" in s.state.reason


def test_timeout_retries_then_compensates_including_the_timed_out_step():
    s = SagaScenario(PLACE_ORDER).start().complete_steps("charge_payment")
    s.expect_commands("ReserveStock")
    timeout = PLACE_ORDER.steps[2].timeout_s
    s.time_passes(timeout / 2).expect_commands()          # not yet
    s.time_passes(timeout).expect_commands("ReserveStock")  # retry 1
    assert s.last[0].attempt == 2
    s.time_passes(timeout * 2).expect_commands("ReserveStock")  # retry 2 (back-off doubles)
    s.time_passes(timeout * 4).expect_commands("ReleaseStock")  # gave up: compensate it too
    s.reply("reserve_stock", action="compensation").expect_commands("RefundPayment")
    s.reply("charge_payment", action="compensation").expect_commands("RejectOrder")
    s.reply("create_order", action="compensation").expect_status(SagaStatus.COMPENSATED)


def test_retries_carry_the_same_idempotency_key():
    s = SagaScenario(PLACE_ORDER).start()
    first = s.last[0]
    s.time_passes(PLACE_ORDER.steps[1].timeout_s)
    assert s.last[0].idempotency_key == first.idempotency_key and s.last[0].attempt == 2


def test_a_late_reply_after_giving_up_changes_nothing():
    s = SagaScenario(PLACE_ORDER).start()
    for _ in range(PLACE_ORDER.steps[1].retries + 1):
        s.time_passes(PLACE_ORDER.max_timeout_s)
    s.expect_commands("RefundPayment")  # the charge may have happened: refund it
    s.reply("charge_payment", action="action").expect_commands().expect_status(SagaStatus.COMPENSATING)


def test_past_the_pivot_the_saga_only_goes_forward():
    s = SagaScenario(PLACE_ORDER).start().complete_steps(*STEPS[:-1]).expect_commands("ApproveOrder")
    for _ in range(20):
        s.time_passes(PLACE_ORDER.max_timeout_s).expect_commands("ApproveOrder")
    s.reply("approve_order").expect_status(SagaStatus.COMPLETED)


def test_a_refusal_at_the_pivot_compensates_the_steps_before_it():
    s = SagaScenario(PLACE_ORDER).start().complete_steps(*STEPS[:-1])
    s.reply("approve_order", outcome="failed", reason="order cancelled meanwhile")
    s.expect_commands("CancelShipment").expect_status(SagaStatus.COMPENSATING)


def test_a_compensation_that_keeps_failing_is_resent_after_back_off_then_ends_failed():
    s = SagaScenario(PLACE_ORDER).start().reply("charge_payment", outcome="failed", reason="card over limit")
    s.expect_commands("RejectOrder")
    for attempt in range(2, PLACE_ORDER.compensation_retries + 2):
        s.reply("create_order", action="compensation", outcome="failed", reason="db says no")
        s.expect_commands()  # not at once: after a back-off
        s.reply("create_order", action="compensation", outcome="failed", reason="late copy").expect_commands()
        s.time_passes(PLACE_ORDER.max_timeout_s).expect_commands("RejectOrder")
        assert s.last[0].attempt == attempt
    s.reply("create_order", action="compensation", outcome="failed", reason="db says no")
    s.expect_status(SagaStatus.FAILED).expect_commands()
    assert "db says no" in s.state.reason


def test_a_compensation_succeeding_on_a_resend_goes_on():
    s = SagaScenario(PLACE_ORDER).start().complete_steps("charge_payment")
    s.reply("reserve_stock", outcome="failed", reason="no stock").expect_commands("RefundPayment")
    s.reply("charge_payment", action="compensation", outcome="failed", reason="bank down").expect_commands()
    s.time_passes(PLACE_ORDER.max_timeout_s).expect_commands("RefundPayment")
    s.reply("charge_payment", action="compensation").expect_commands("RejectOrder")


def _failed_refund() -> SagaScenario:
    """Charged, then reserving stock refused, then the refund refused until the retries ran out."""
    s = SagaScenario(PLACE_ORDER).start().complete_steps("charge_payment")
    s.reply("reserve_stock", outcome="failed", reason="no stock").expect_commands("RefundPayment")
    for _ in range(PLACE_ORDER.compensation_retries):
        s.reply("charge_payment", action="compensation", outcome="failed", reason="over the limit")
        s.time_passes(PLACE_ORDER.max_timeout_s).expect_commands("RefundPayment")
    s.reply("charge_payment", action="compensation", outcome="failed", reason="over the limit")
    return s.expect_status(SagaStatus.FAILED)


def test_a_retried_failed_saga_resends_its_compensation_from_attempt_one_and_goes_on():
    s = _failed_refund()
    s._apply(machine.retry(PLACE_ORDER, s.state, s.now))
    s.expect_status(SagaStatus.COMPENSATING).expect_commands("RefundPayment")
    assert s.last[0].attempt == 1 and s.state.step == PLACE_ORDER.index("charge_payment")
    assert s.state.deadline > s.now, "the resent command has a deadline ahead"
    s.reply("charge_payment", action="compensation").expect_commands("RejectOrder")
    s.reply("create_order", action="compensation").expect_status(SagaStatus.COMPENSATED)


def test_a_retried_saga_failing_again_ends_failed_again_after_its_retries():
    s = _failed_refund()
    s._apply(machine.retry(PLACE_ORDER, s.state, s.now))
    for _ in range(PLACE_ORDER.compensation_retries):
        s.reply("charge_payment", action="compensation", outcome="failed", reason="still over")
        s.time_passes(PLACE_ORDER.max_timeout_s).expect_commands("RefundPayment")
    s.reply("charge_payment", action="compensation", outcome="failed", reason="still over")
    s.expect_status(SagaStatus.FAILED)


def test_resolve_closes_a_failed_saga_with_the_reason_and_sends_nothing():
    s = _failed_refund()
    s._apply(machine.resolve(s.state, "refunded by bank transfer"))
    s.expect_status(SagaStatus.RESOLVED).expect_commands()
    assert "refunded by bank transfer" in s.state.reason and "over the limit" in s.state.reason
    s.time_passes(10_000).expect_commands()  # terminal


def test_only_failed_sagas_are_taken_over_and_a_failure_past_the_pivot_only_resolved():
    running = SagaScenario(PLACE_ORDER).start()
    with pytest.raises(NotRetryable, match="only a FAILED saga"):
        machine.retry(PLACE_ORDER, running.state, running.now)
    with pytest.raises(NotRetryable, match="only a FAILED saga"):
        machine.resolve(running.state, "why")
    # as on_reply leaves a saga whose step after the pivot refused (PLACE_ORDER has none after it)
    past = replace(running.state, status=SagaStatus.FAILED, reason="x failed past the pivot: no courier")
    with pytest.raises(NotRetryable, match="refused action is final"):
        machine.retry(PLACE_ORDER, past, running.now)
    assert machine.resolve(past, "shipped by hand").state.status is SagaStatus.RESOLVED


def test_duplicate_replies_are_ignored():
    s = SagaScenario(PLACE_ORDER).start().reply("charge_payment").expect_commands("ReserveStock")
    s.reply("charge_payment", action="action").expect_commands()
    assert s.state.step == PLACE_ORDER.index("reserve_stock")


def test_terminal_sagas_ignore_everything():
    s = SagaScenario(PLACE_ORDER).start().complete_steps(*STEPS).expect_status(SagaStatus.COMPLETED)
    s.time_passes(10_000).expect_commands().reply("approve_order").expect_commands()


@pytest.mark.parametrize("steps, message", [
    ([Step(name="a", participant="orders", command=None, compensation="X"),
      Step(name="b", participant="payments", command="B")], "before the pivot but has no compensation"),
    ([Step(name="a", participant="orders", command="A", compensation="X"),
      Step(name="b", participant="payments", command="B", compensation="Y")], "initiator's local transaction"),
    ([Step(name="a", participant="orders", command=None, compensation="X"),
      Step(name="a", participant="payments", command="B", compensation="Y")], "repeat"),
    ([Step(name="a", participant="orders", command=None, compensation="X"),
      Step(name="b", participant="payments", command="B", compensation="Y", pivot=True)], "never compensated"),
])
def test_invalid_definitions_are_refused(steps, message):
    with pytest.raises(ValidationError, match=message):
        SagaDefinition(name="x", steps=steps)


def test_scaled_definition_multiplies_every_timeout():
    fast = PLACE_ORDER.scaled(0.1)
    assert [s.timeout_s for s in fast.steps] == [s.timeout_s * 0.1 for s in PLACE_ORDER.steps]
    assert fast.max_timeout_s == PLACE_ORDER.max_timeout_s * 0.1 and fast.steps[1].command == "ChargePayment"
