"""The chaos run's pure parts: the draw of faults (repeatable by seed, only among what runs and
the kinds asked for) and the dead-letter comparison."""
from __future__ import annotations

import random

import pytest

from operate.chaos.checks import new_dead_letters
from operate.chaos.faults import KINDS, StackControls
from stack.settings import StackSettings


class Running(StackControls):
    def __init__(self, found: dict[str, list[str]]) -> None:
        super().__init__(StackSettings.from_env(), [])
        self.found = found

    def candidates(self) -> dict[str, list[str]]:
        return {k: self.found.get(k, []) for k in KINDS}


EVERYTHING = {"broker": ["kafka"], "connect": ["connect"], "replication-worker": ["a-to-b"],
              "saga-worker": ["saga-pay"], "coordinator": ["saga-orchestrator"], "database": ["db1", "db2"]}


def test_the_same_seed_draws_the_same_faults():
    def draws(seed: int) -> list[tuple[str, str]]:
        rng, controls = random.Random(seed), Running(EVERYTHING)
        return [(f.kind, f.target) for f in (controls.draw(rng) for _ in range(30))]
    assert draws(3) == draws(3)
    assert {k for k, _ in draws(3)} == set(KINDS), "30 draws should meet every kind"


def test_only_running_parts_and_asked_kinds_are_drawn():
    controls, rng = Running({**EVERYTHING, "coordinator": []}), random.Random(1)
    kinds = {controls.draw(rng, ("coordinator", "database")).kind for _ in range(20)}
    assert kinds == {"database"}
    with pytest.raises(RuntimeError, match="nothing to inject"):
        Running({}).draw(rng)


def test_only_letters_added_during_the_run_count():
    assert new_dead_letters({"dlq.a": 3}, {"dlq.a": 3, "dlq.b": 0}) == []
    assert new_dead_letters({"dlq.a": 3}, {"dlq.a": 5, "dlq.b": 1}) == ["dlq.a: 2 new", "dlq.b: 1 new"]

