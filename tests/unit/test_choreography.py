"""The choreographed place-order saga, without any broker: the real participant runtime
(streams/sagas/choreography_runtime.py over participant.py: inbox, compensation marker,
deadline, watches, resends, give-ups) runs for each participant against its own in-memory
store (tests/unit/memory_store.py); what a participant commits to its outbox is delivered, in
order, to whoever subscribes to its topic, as Debezium and Kafka would. Handlers are the test's:
they record their effect in the participant's transaction and refuse where told. Compared with
what the orchestrated machine does for the same data."""
from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from schemas.outbox import OutboxMessage
from schemas.saga import SagaCommand, SagaEvent
from services.ecommerce.place_order import PLACE_ORDER, PLACE_ORDER_SAGA
from streams.sagas import choreography
from streams.sagas.choreography import ANSWERED, FAILED, WAITING, Watch
from streams.sagas.choreography_runtime import Participant, subscriptions, to_event
from streams.sagas.enabled import Sagas
from streams.sagas.testing import SagaScenario
from streams.sagas.topics import ROUTED_PREFIX
from tests.unit.memory_store import MemoryStore

STEPS = [s.name for s in PLACE_ORDER.steps]
SAGA = "saga-1"
SAGAS = Sagas((PLACE_ORDER_SAGA,))
PARTICIPANTS = PLACE_ORDER_SAGA.participants
ORDER = {"order_id": 1, "customer_id": 2, "total": "20.00", "country": "ES", "credit_limit": "100.00",
         "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "10.00"}]}


@dataclass
class World:
    """Each participant's runtime and store, the topics between them, and the clock."""
    refuse: dict[tuple[str, str], str] = field(default_factory=dict)   # (step, action) -> reason
    down: set[str] = field(default_factory=set)      # participants not reading their topics
    muted: set[str] = field(default_factory=set)     # participants whose outbox is not published yet
    now: float = 1_000.0

    def __post_init__(self) -> None:
        self.stores = {p: MemoryStore(p) for p in PARTICIPANTS}
        self.runtimes = {p: Participant(SAGAS, p) for p in PARTICIPANTS}
        for p, runtime in self.runtimes.items():
            runtime.handlers = {name: self._handler for step in PLACE_ORDER.steps if step.participant == p
                                for name in (step.command, step.compensation) if name}
        self.queue: deque[tuple[str, OutboxMessage, float]] = deque()
        self.held: dict[str, deque] = {p: deque() for p in PARTICIPANTS}
        self.published = dict.fromkeys(PARTICIPANTS, 0)
        self.events: list[SagaEvent] = []          # every saga event published, in order
        self.status: str | None = None             # the monitor's view
        self.seq = 0

    async def _handler(self, conn: MemoryStore, cmd: SagaCommand) -> str | None:
        """Acts (a row in the participant's own table), then refuses where told: the runtime's
        savepoint must take the effect back."""
        self.seq += 1
        conn.add_effect(self.seq, (cmd.step_name, cmd.action))
        return self.refuse.get((cmd.step_name, cmd.action))

    @property
    def effects(self) -> list[tuple[str, str]]:
        rows = [r for store in self.stores.values() for r in store.rows("effects")]
        return [r["what"] for r in sorted(rows, key=lambda r: r["seq"])]

    def watches(self) -> list[dict]:
        return [w for store in self.stores.values() for w in store.rows("saga_watches")]

    def _call(self, me: str, coro_of) -> None:
        store = self.stores[me]
        store.clock = datetime.fromtimestamp(self.now, tz=UTC)
        asyncio.run(coro_of(store))
        self._publish(me)

    def _publish(self, me: str) -> None:
        """Debezium: the participant's committed outbox rows onto their topics, in order."""
        if me in self.muted:
            return
        rows = self.stores[me].rows("outbox")
        for row in rows[self.published[me]:]:
            msg = OutboxMessage(event_id=str(row["id"]), event_type=row["type"], aggregate_id=row["aggregateid"],
                                payload=row["payload"])
            self.queue.append((ROUTED_PREFIX + row["aggregatetype"], msg, self.now))
            self._monitor(SagaEvent.model_validate(row["payload"]))
        self.published[me] = len(rows)

    def _monitor(self, e: SagaEvent) -> None:
        self.events.append(e)
        self.status, _ = choreography.status_after(PLACE_ORDER, self.status, e)

    def _deliver(self, me: str, topic: str, msg: OutboxMessage, at: float) -> None:
        e = to_event(SAGAS, topic, msg, at)
        if e is not None:
            self._call(me, lambda store: self.runtimes[me].on_event(store, e, self.now))

    def run(self) -> World:
        while self.queue:
            topic, msg, at = self.queue.popleft()
            for me in PARTICIPANTS:
                if topic not in subscriptions(SAGAS, me):
                    continue
                if me in self.down:
                    self.held[me].append((topic, msg, at))
                else:
                    self._deliver(me, topic, msg, at)
        return self

    def start(self) -> World:
        """The orders service commits the order and its OrderPlaced (step 0 done)."""
        msg = OutboxMessage(event_id=str(uuid.uuid4()), event_type="OrderPlaced", aggregate_id="1", payload=ORDER)
        start = to_event(SAGAS, PLACE_ORDER_SAGA.start.topic, msg, self.now)
        assert start is not None
        self._monitor(start)
        self.queue.append((PLACE_ORDER_SAGA.start.topic, msg, self.now))
        return self.run()

    def revive(self, participant: str) -> World:
        """It reads what it missed, in order."""
        self.down.discard(participant)
        while self.held[participant]:
            self._deliver(participant, *self.held[participant].popleft())
            self.run()
        return self

    def unmute(self, participant: str) -> World:
        self.muted.discard(participant)
        self._publish(participant)
        return self.run()

    def time_passes(self, seconds: float) -> World:
        """Every running participant's timer scans its due watches."""
        self.now += seconds
        for me in PARTICIPANTS:
            if me not in self.down:
                self._call(me, lambda store, me=me: self.runtimes[me].scan_watches(store, self.now))
        return self.run()

    def of(self, kind: str, step: int, action: str | None = None) -> list[SagaEvent]:
        return [e for e in self.events if e.kind == kind and e.step == step and action in (None, e.action)]


def test_success_path_acts_once_per_step_in_order_and_answers_every_watch():
    w = World().start()
    assert w.status == "COMPLETED"
    assert w.effects == [(s, "action") for s in STEPS[1:]]
    assert w.watches() and {x["state"] for x in w.watches()} == {ANSWERED}
    inbox = {(r["step"], r["action"], r["outcome"]) for s in w.stores.values() for r in s.rows("saga_inbox")}
    assert inbox == {(i, "action", "succeeded") for i in range(1, len(STEPS))}


@pytest.mark.parametrize("k", range(1, len(STEPS) - 1))
def test_failure_at_step_k_compensates_the_same_steps_in_the_same_order_as_the_orchestrator(k):
    w = World(refuse={(STEPS[k], "action"): "declined"}).start()
    assert w.status == "COMPENSATED"
    assert (STEPS[k], "action") not in w.effects, "a refusing handler's effect is rolled back with its savepoint"
    compensated = [s for s, a in w.effects if a == "compensation"]
    assert compensated == STEPS[:k][::-1]

    orchestrated = SagaScenario(PLACE_ORDER).start().complete_steps(*STEPS[1:k])
    orchestrated.reply(STEPS[k], outcome="failed", reason="declined")
    while orchestrated.last:
        orchestrated.reply(orchestrated.defn.steps[orchestrated.last[0].step].name, action="compensation")
    assert compensated == [c.step_name for c in orchestrated.sent if c.action == "compensation"]


def test_a_participant_down_is_resent_then_given_up_and_when_back_its_late_action_does_nothing():
    reserve = PLACE_ORDER.steps[2]
    w = World(down={"inventory"}).start()
    for _ in range(reserve.retries + 1):  # attempts of 10 s, 20 s, 40 s: the resends, then the give-up
        w.time_passes(45)
    resends = w.of("resend", 2)
    assert len(resends) == reserve.retries and w.of("abandon", 2), w.events
    assert w.status == "COMPENSATING" and ("reserve_stock", "action") not in w.effects
    w.revive("inventory")
    assert w.status == "COMPENSATED"
    assert ("reserve_stock", "action") not in w.effects, "the old ReserveStock, read after the give-up, did nothing"
    assert [s for s, a in w.effects if a == "compensation"] == ["charge_payment", "create_order"]
    marker = [(r["action"], r["outcome"]) for r in w.stores["inventory"].rows("saga_inbox")]
    assert sorted(marker) == [("action", "failed"), ("compensation", "succeeded")], "the give-up left its marker"


def test_a_give_up_loses_to_a_step_that_did_act_and_the_saga_goes_on():
    """The asked step acted just before its deadline, but its answer was slow: the asker gave
    up. The step alone decides, under its lock: it acted, so its success stands."""
    w = World(down={"inventory"}, muted={"inventory"}).start()
    w.revive("inventory")          # inventory reads ReserveStock in time and acts...
    w.down.add("inventory")        # ...but its answer is slow, and it reads nothing more for a while
    assert w.effects[-1] == ("reserve_stock", "action") and not w.of("outcome", 2)
    for _ in range(3):
        w.time_passes(45)          # meanwhile payments resends, then gives up on it
    assert w.of("abandon", 2)
    w.unmute("inventory")          # its answer arrives
    w.revive("inventory")          # it reads the resends and the give-up: it did act, so its success stands
    assert not w.of("outcome", 3), "its success asked IssueInvoice with a deadline long past: dropped unrecorded"
    w.time_passes(15)              # inventory's watch on invoicing resends it, with a new deadline
    assert len(w.of("resend", 3)) == 1
    assert len(w.of("resend", 2)) >= 2 and len(w.of("outcome", 2, "action")) == 1, \
        "the resends were repeats: answered once, by the first event"
    assert w.status == "COMPLETED"
    assert [a for _, a in w.effects].count("compensation") == 0
    assert w.effects == [(s, "action") for s in STEPS[1:]]


def test_a_resend_read_in_time_after_the_step_acted_acts_no_second_time_and_publishes_nothing():
    w = World(muted={"inventory"}).start()  # inventory acts on ReserveStock; its answer is slow
    assert w.effects[-1] == ("reserve_stock", "action")
    w.time_passes(11)                        # payments' watch resends; inventory reads it well in time
    assert len(w.of("resend", 2)) == 1
    assert w.effects.count(("reserve_stock", "action")) == 1, "the resend acted a second time"
    w.unmute("inventory")
    assert len(w.of("outcome", 2, "action")) == 1, "a repeated ask publishes nothing: the first answer is on its way"
    assert w.status == "COMPLETED"
    assert w.effects == [(s, "action") for s in STEPS[1:]]


def test_a_compensation_that_keeps_failing_is_resent_after_back_offs_then_quarantined():
    w = World(refuse={("issue_invoice", "action"): "needs approval",
                      ("charge_payment", "compensation"): "needs a person"}).start()
    for _ in range(8):
        w.time_passes(60)
    refunds = w.of("outcome", 1, "compensation")
    assert len(refunds) == PLACE_ORDER.compensation_retries + 1, refunds
    assert w.status == "FAILED"
    assert any(x["state"] == FAILED for x in w.watches())
    assert ("create_order", "compensation") not in w.effects, "the order waits for a person"
    assert ("charge_payment", "compensation") not in w.effects, "every refused refund was rolled back"


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


def test_a_person_retries_a_quarantined_compensation_from_attempt_1_and_the_monitor_follows():
    from streams.sagas.machine import NotRetryable

    failed = Watch(SAGA, 1, "compensation", PLACE_ORDER.compensation_retries + 1, 10.0, {}, state=FAILED,
                   reason="compensation of charge_payment failed: needs a person")
    (again,), (resend,) = choreography.take_over(PLACE_ORDER, failed, "retry", "ops", "limit raised", 100.0)
    assert (again.state, again.attempt, again.retry_pending, again.reason) == (WAITING, 1, False, None)
    assert again.deadline == 100.0 + PLACE_ORDER.steps[1].timeout_s
    ask = choreography.ask_of(PLACE_ORDER, resend)
    assert (resend.kind, ask.step, ask.phase, ask.attempt) == ("resend", 1, "compensation", 1)
    assert choreography.status_after(PLACE_ORDER, "FAILED", resend) == ("COMPENSATING", None)
    assert choreography.timeline_entries(PLACE_ORDER, resend) == [
        ("retried", 1, "charge_payment", "compensation", "retry by ops: limit raised"),
        ("sent", 1, "charge_payment", "compensation", "RefundPayment attempt 1")]
    with pytest.raises(NotRetryable, match="not FAILED"):
        choreography.take_over(PLACE_ORDER, again, "retry", "ops", "twice", 101.0)


def test_a_person_resolves_a_quarantined_saga_and_nobody_is_asked_anything():
    failed = Watch(SAGA, 1, "compensation", 4, 10.0, {}, state=FAILED, reason="needs a person")
    (closed,), (resolve,) = choreography.take_over(PLACE_ORDER, failed, "resolve", "ops", "refunded by hand", 100.0)
    assert closed.state == ANSWERED and choreography.on_due(PLACE_ORDER, closed, 1e9) == ([closed], [])
    assert choreography.ask_of(PLACE_ORDER, resolve) is None
    status, reason = choreography.status_after(PLACE_ORDER, "FAILED", resolve)
    assert status == "RESOLVED" and "refunded by hand" in (reason or "")
    assert choreography.timeline_entries(PLACE_ORDER, resolve) == [
        ("resolved", 1, "charge_payment", "compensation", "resolve by ops: refunded by hand")]
    # an ordinary resend or a late outcome does not reopen a FAILED saga; only a person's decision does
    plain = choreography._event(PLACE_ORDER, failed, "resend", 5.0)
    assert choreography.status_after(PLACE_ORDER, "FAILED", plain) == ("FAILED", None)
