"""Whose time ran out, the participant's or the pipeline's: the pure rules both saga modes use
before a step times out (streams/sagas/deadlines.py), and the choreography's moved watch."""
from __future__ import annotations

import pytest

from schemas.saga import SagaEvent
from services.ecommerce.place_order import PLACE_ORDER
from streams.sagas import choreography
from streams.sagas.choreography import Watch
from streams.sagas.deadlines import (
    INFRASTRUCTURE_DELAY,
    PARTICIPANT_TIMEOUT,
    PipelineFacts,
    downtime,
    infrastructure_delay,
    postponed,
)

RUNNING = {"cdc-orchestrator": "RUNNING", "cdc-inventory": "RUNNING"}
HEALTHY = PipelineFacts(connectors=RUNNING, members=1, backlog=0, own_backlog=0)


def test_a_healthy_pipeline_lets_the_participants_clock_run():
    assert infrastructure_delay(HEALTHY) is None


@pytest.mark.parametrize("facts, says", [
    (PipelineFacts(unreachable="KafkaException: broker transport failure"), "not answering"),
    (PipelineFacts(connectors={**RUNNING, "cdc-inventory": "PAUSED/PAUSED"}, members=1), "cdc-inventory PAUSED"),
    (PipelineFacts(connectors={**RUNNING, "cdc-orchestrator": "MISSING"}, members=1), "cdc-orchestrator MISSING"),
    (PipelineFacts(connectors=RUNNING, members=1, backlog=40), "40 message(s) in the participant's backlog"),
    (PipelineFacts(connectors=RUNNING, members=0, backlog=0, own_backlog=3), "3 message(s) not read yet"),
])
def test_what_the_pipeline_holds_is_an_infrastructure_delay(facts, says):
    why = infrastructure_delay(facts)
    assert why is not None and says in why, why


def test_a_participant_with_no_live_member_is_down_however_long_its_backlog():
    # rule: the backlog of a group nobody reads is the participant's failure, not the pipeline's
    assert infrastructure_delay(PipelineFacts(connectors=RUNNING, members=0, backlog=12)) is None


def test_a_connector_that_is_not_running_wins_over_a_down_participant():
    # capture stopped: the participant's answer may be stuck in its outbox, whatever its group says
    facts = PipelineFacts(connectors={"cdc-inventory": "RUNNING/FAILED"}, members=0, backlog=5)
    assert "RUNNING/FAILED" in (infrastructure_delay(facts) or "")


def test_a_postponed_deadline_gives_a_whole_step_timeout_from_now():
    assert postponed(now=100.0, timeout=10.0, business_deadline=None) == 110.0


def test_the_business_deadline_is_never_moved():
    assert postponed(now=100.0, timeout=10.0, business_deadline=105.0) == 105.0
    assert postponed(now=105.0, timeout=10.0, business_deadline=105.0) is None, "passed: time out as usual"


@pytest.mark.parametrize("last, now, expected", [(None, 100.0, 0.0), (99.5, 100.0, 0.0), (40.0, 100.0, 60.0)])
def test_the_scanner_that_was_away_moves_deadlines_by_its_gap(last, now, expected):
    assert downtime(last, now, grace=3.0) == expected


def test_the_business_deadline_scales_with_the_step_timeouts():
    defn = PLACE_ORDER.model_copy(update={"deadline_s": 300.0}).scaled(0.1)
    assert defn.deadline_s == pytest.approx(30.0) and defn.steps[1].timeout_s == pytest.approx(1.0)


# --- the choreography's watch -------------------------------------------------------------------
def _watch(**kw) -> Watch:
    return Watch(**{"saga_id": "s", "step": 2, "phase": "action", "attempt": 3, "deadline": 50.0, **kw})


def test_a_delayed_watch_moves_its_deadline_without_spending_an_attempt_and_says_why():
    moved = choreography.on_delay(PLACE_ORDER, _watch(), now=60.0, why="capture not running: cdc-inventory PAUSED")
    assert moved is not None
    (w,), (e,) = moved
    assert (w.attempt, w.state) == (3, choreography.WAITING), "the attempt is not used up"
    assert w.deadline > 60.0
    assert e.kind == "delay" and choreography.ask_of(PLACE_ORDER, e) is None, "a delay asks nobody to act"
    (row,) = choreography.timeline_entries(PLACE_ORDER, e)
    assert row[0] == "delayed" and row[4].startswith(INFRASTRUCTURE_DELAY) and "PAUSED" in row[4]


def test_without_a_delay_the_last_attempt_gives_up_as_before():
    w = _watch()
    _, (e,) = choreography.on_due(PLACE_ORDER, w, now=60.0)
    assert e.kind == "abandon"
    assert choreography.timeline_entries(PLACE_ORDER, e)[0][:1] == ("timed_out",)
    assert choreography.timeline_entries(PLACE_ORDER, e)[0][4].startswith(PARTICIPANT_TIMEOUT)


def test_a_compensations_back_off_is_a_timer_not_a_wait_so_it_never_moves():
    assert choreography.on_delay(PLACE_ORDER, _watch(phase="compensation", retry_pending=True), 60.0, "x") is None


def test_a_resend_is_a_participant_timeout_in_the_timeline_a_retry_after_failure_is_not():
    (_w,), (resend,) = choreography.on_due(PLACE_ORDER, _watch(attempt=1), now=60.0)
    assert [r[0] for r in choreography.timeline_entries(PLACE_ORDER, resend)] == ["timed_out", "sent"]
    backoff = _watch(phase="compensation", attempt=2, retry_pending=True)
    (_w,), (retry,) = choreography.on_due(PLACE_ORDER, backoff, now=60.0)
    assert [r[0] for r in choreography.timeline_entries(PLACE_ORDER, retry)] == ["sent"]


def test_the_monitor_keeps_the_saga_state_on_a_delay():
    e = SagaEvent(kind="delay", saga=PLACE_ORDER.name, saga_id="s", step=2, action="action", at=1.0, reason="x")
    assert choreography.status_after(PLACE_ORDER, "RUNNING", e) == ("RUNNING", None)
