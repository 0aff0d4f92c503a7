"""Given/expect tests of a saga definition, no broker: start it, feed replies and the clock,
and check the commands it sends and the state it ends in.

    (SagaScenario(PLACE_ORDER).start()
        .expect_commands("ChargePayment")
        .reply("charge_payment").expect_commands("ReserveStock")
        .reply("reserve_stock", outcome="failed", reason="out of stock")
        .expect_commands("RefundPayment")
        ...)
"""
from __future__ import annotations

from typing import Any, Literal

from schemas.saga import Action, SagaCommand, SagaReply
from streams.sagas import machine
from streams.sagas.definition import SagaDefinition
from streams.sagas.machine import SagaState, SagaStatus


class SagaScenario:
    def __init__(self, definition: SagaDefinition, saga_id: str = "saga-1",
                 payload: dict[str, Any] | None = None, now: float = 1_000.0) -> None:
        self.defn = definition
        self.saga_id = saga_id
        self.payload = payload or {}
        self.now = now
        self.state: SagaState | None = None
        self.last: tuple[SagaCommand, ...] = ()
        self.sent: list[SagaCommand] = []

    def _apply(self, transition: machine.Transition) -> SagaScenario:
        self.state = transition.state
        self.last = transition.commands
        self.sent.extend(transition.commands)
        return self

    def start(self) -> SagaScenario:
        return self._apply(machine.start(self.defn, self.saga_id, self.payload, self.now))

    def reply(self, step: str, outcome: Literal["succeeded", "failed"] = "succeeded", action: Action | None = None,
              reason: str | None = None) -> SagaScenario:
        assert self.state is not None, "start() first"
        index = self.defn.index(step)
        act = action or ("action" if self.state.phase == "action" or index != self.state.step else "compensation")
        msg = SagaReply(saga_id=self.saga_id, step=index, action=act, outcome=outcome, reason=reason)
        return self._apply(machine.on_reply(self.defn, self.state, msg, self.now))

    def time_passes(self, seconds: float) -> SagaScenario:
        assert self.state is not None
        self.now += seconds
        return self._apply(machine.on_timeout(self.defn, self.state, self.now))

    def expect_commands(self, *names: str) -> SagaScenario:
        got = tuple(c.name for c in self.last)
        assert got == names, f"expected commands {names}, the saga sent {got} (state {self.state})"
        return self

    def expect_status(self, status: SagaStatus) -> SagaScenario:
        assert self.state is not None and self.state.status is status, f"expected {status}, state is {self.state}"
        return self

    def complete_steps(self, *steps: str) -> SagaScenario:
        """Reply `succeeded` to each step's action in turn."""
        for step in steps:
            self.reply(step, action="action")
        return self
