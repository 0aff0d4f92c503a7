"""The choreographed place-order saga, without any broker: events delivered in order, each
participant acting on what it is asked with the same rules as the real inbox (act once per
key, a compensation before its action leaves a marker, a deadline is enforced), watches kept
by whoever asked. Compared with what the orchestrated machine does for the same data."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import pytest

from schemas.saga import SagaEvent
from services.ecommerce.place_order import PLACE_ORDER
from streams.sagas import choreography
from streams.sagas.choreography import ANSWERED, FAILED, WAITING, Watch
from streams.sagas.testing import SagaScenario

STEPS = [s.name for s in PLACE_ORDER.steps]
SAGA = "saga-1"


@dataclass
class World:
    """Participants, their inboxes and watches, the event log and the clock."""
    refuse: dict[tuple[str, str], str] = field(default_factory=dict)   # (step, action) -> reason
    down: set[str] = field(default_factory=set)                         # participants not reading
    now: float = 1_000.0
    queue: deque = field(default_factory=deque)
    held: list = field(default_factory=list)                            # events waiting for a down participant
    inbox: dict[tuple[int, str], str] = field(default_factory=dict)     # (step, action) -> outcome
    watches: dict[tuple[str, int, str], Watch] = field(default_factory=dict)
    effects: list[tuple[str, str]] = field(default_factory=list)        # (step, action) that changed data
    status: str | None = None
    events: list[SagaEvent] = field(default_factory=list)
    repeats: int = 0                                                    # asks answered before

    def publish(self, emitter: str, e: SagaEvent) -> None:
        self.events.append(e)
        self.status, _ = choreography.status_after(PLACE_ORDER, self.status, e)
        self.queue.append((emitter, e))

    def start(self) -> World:
        e = choreography.outcome_event(PLACE_ORDER, SAGA, 0, "action", "succeeded", None, 1, {}, self.now)
        w = choreography.watch_for(PLACE_ORDER, e)
        assert w is not None
        self.watches[("orders", w.step, w.phase)] = w
        self.publish("orders", e)
        return self.run()

    def run(self) -> World:
        while self.queue:
            emitter, e = self.queue.popleft()
            for me in dict.fromkeys(s.participant for s in PLACE_ORDER.steps):
                if me == emitter:
                    continue
                if me in self.down:
                    self.held.append((me, e))
                else:
                    self.deliver(me, e)
        return self

    def revive(self, participant: str) -> World:
        self.down.discard(participant)
        waiting, self.held = [h for h in self.held if h[0] == participant], [h for h in self.held if h[0] != participant]
        for me, e in waiting:
            self.deliver(me, e)
            self.run()
        return self

    def deliver(self, me: str, e: SagaEvent) -> None:
        for key, w in list(self.watches.items()):
            if key[0] == me:
                new, out = choreography.on_answer(PLACE_ORDER, w, e, self.now)
                self._keep(me, new, out)
        ask = choreography.ask_of(PLACE_ORDER, e)
        if ask is None or choreography.participant_of(PLACE_ORDER, ask.step) != me:
            return
        step = PLACE_ORDER.steps[ask.step]
        if ask.cancel_only and self.inbox.get((ask.step, "action")) == "succeeded":
            return  # it acted: its success, already published, stands
        done = self.inbox.get((ask.step, ask.phase))
        if done is not None and not (ask.phase == "compensation" and done == "failed"):
            self.repeats += 1
            return  # a repeat publishes nothing: the first answer is on its way

        action = self.inbox.get((ask.step, "action"))
        if ask.phase == "action":
            if (ask.step, "compensation") in self.inbox:
                reason: str | None = "compensated before it arrived"
            elif self.now > ask.deadline:
                return  # dropped unrecorded: the asker's watch resends or gives up
            else:
                reason = self.refuse.get((step.name, "action"))
        elif step.command is not None and action is None:
            self.inbox[(ask.step, "action")] = "failed"  # the marker: a late action is a no-op
            reason = None
        elif step.command is not None and action == "failed":
            reason = None  # the action had no effect: nothing to undo
        else:
            reason = self.refuse.get((step.name, "compensation"))
        if reason is None and (ask.phase == "action" or action == "succeeded" or step.command is None):
            self.effects.append((step.name, ask.phase))
        self.inbox[(ask.step, ask.phase)] = "failed" if reason else "succeeded"
        self._outcome(me, ask.step, ask.phase, reason, ask.attempt)

    def _outcome(self, me: str, step: int, action: str, reason: str | None, attempt: int) -> None:
        e = choreography.outcome_event(PLACE_ORDER, SAGA, step, action, "failed" if reason else "succeeded",  # type: ignore[arg-type]
                                       reason, attempt, {}, self.now)
        w = choreography.watch_for(PLACE_ORDER, e)
        if w is not None:
            self.watches.setdefault((me, w.step, w.phase), w)
        self.publish(me, e)

    def _keep(self, me: str, watches: list[Watch], events: list[SagaEvent]) -> None:
        for w in watches:
            self.watches[(me, w.step, w.phase)] = w
        for e in events:
            self.publish(me, e)

    def time_passes(self, seconds: float) -> World:
        self.now += seconds
        for key, w in list(self.watches.items()):
            new, out = choreography.on_due(PLACE_ORDER, w, self.now)
            self._keep(key[0], new, out)
        return self.run()


def test_success_path_acts_once_per_step_in_order_and_answers_every_watch():
    w = World().start()
    assert w.status == "COMPLETED"
    assert w.effects == [(s, "action") for s in STEPS[1:]]
    assert {x.state for x in w.watches.values()} == {ANSWERED}


@pytest.mark.parametrize("k", range(1, len(STEPS) - 1))
def test_failure_at_step_k_compensates_the_same_steps_in_the_same_order_as_the_orchestrator(k):
    w = World(refuse={(STEPS[k], "action"): "declined"}).start()
    assert w.status == "COMPENSATED"
    compensated = [s for s, a in w.effects if a == "compensation"]
    assert compensated == STEPS[:k][::-1]

    orchestrated = SagaScenario(PLACE_ORDER).start().complete_steps(*STEPS[1:k])
    orchestrated.reply(STEPS[k], outcome="failed", reason="declined")
    while orchestrated.last:
        orchestrated.reply(orchestrated.defn.steps[orchestrated.last[0].step].name, action="compensation")
    assert compensated == [c.step_name for c in orchestrated.sent if c.action == "compensation"]


def test_a_participant_down_is_resent_then_given_up_and_when_back_its_late_action_does_nothing():
    w = World(down={"inventory"}).start()
    for _ in range(3):  # attempts of 10 s, 20 s, 40 s: two resends, then the give-up
        w.time_passes(45)
    resends = [e for e in w.events if e.kind == "resend" and e.step == 2]
    assert len(resends) == 2 and any(e.kind == "abandon" and e.step == 2 for e in w.events), w.events
    assert w.status == "COMPENSATING" and ("reserve_stock", "action") not in w.effects
    w.revive("inventory")
    assert w.status == "COMPENSATED"
    assert ("reserve_stock", "action") not in w.effects, "the old ReserveStock, read after the give-up, did nothing"
    assert [s for s, a in w.effects if a == "compensation"] == ["charge_payment", "create_order"]


def test_a_give_up_loses_to_a_step_that_did_act_and_the_saga_goes_on():
    """The asked step acted just before its deadline, but its answer was slow: the asker gave
    up. The step alone decides, under its lock: it acted, so its success stands."""
    w = World(down={"inventory"}).start()
    held, w.held = w.held, []
    for me, e in held:      # inventory reads ReserveStock in time and acts...
        w.deliver(me, e)
    answer = w.queue.pop()  # ...but its answer is slow, and it reads nothing more for a while
    for _ in range(3):
        w.time_passes(45)   # meanwhile payments resends, then gives up on it
    assert any(e.kind == "abandon" for e in w.events)
    w.queue.appendleft(answer)
    w.run()
    w.revive("inventory")   # reads the resends and the give-up: it did act, so its success stands
    assert w.repeats >= 2, "the resends were repeats: answered once, by the first event"
    assert w.status == "COMPLETED"
    assert [a for _, a in w.effects].count("compensation") == 0
    assert w.effects == [(s, "action") for s in STEPS[1:]]


def test_a_compensation_that_keeps_failing_is_resent_after_back_offs_then_quarantined():
    w = World(refuse={("issue_invoice", "action"): "needs approval",
                      ("charge_payment", "compensation"): "needs a person"}).start()
    for _ in range(8):
        w.time_passes(60)
    refunds = [e for e in w.events if e.step == 1 and e.action == "compensation" and e.kind == "outcome"]
    assert len(refunds) == PLACE_ORDER.compensation_retries + 1, refunds
    assert w.status == "FAILED"
    assert any(x.state == FAILED for x in w.watches.values())
    assert ("create_order", "compensation") not in w.effects, "the order waits for a person"


def test_timeline_rows_speak_the_orchestrator_vocabulary():
    e = choreography.outcome_event(PLACE_ORDER, SAGA, 3, "action", "failed", "too big", 1, {}, 5.0)
    assert choreography.timeline_entries(PLACE_ORDER, e) == [
        ("replied", 3, "issue_invoice", "action", "failed: too big"),
        ("sent", 2, "reserve_stock", "compensation", "ReleaseStock attempt 1"),
    ]
    assert e.deadline == 5.0 + PLACE_ORDER.steps[2].timeout_s


def test_a_watch_ignores_answers_to_other_steps_and_repeats():
    watch = Watch(SAGA, 2, "action", 1, 10.0)
    other = choreography.outcome_event(PLACE_ORDER, SAGA, 3, "action", "succeeded", None, 1, {}, 1.0)
    assert choreography.on_answer(PLACE_ORDER, watch, other, 1.0) == ([watch], [])
    mine = choreography.outcome_event(PLACE_ORDER, SAGA, 2, "action", "succeeded", None, 1, {}, 1.0)
    (answered,), _ = choreography.on_answer(PLACE_ORDER, watch, mine, 1.0)
    assert answered.state == ANSWERED and watch.state == WAITING
    assert choreography.on_answer(PLACE_ORDER, answered, mine, 2.0) == ([answered], [])
    assert choreography.on_due(PLACE_ORDER, answered, 99.0) == ([answered], [])
