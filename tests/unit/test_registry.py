"""Domains are discovered and validated; the framework names none of them; ports derive from
names and never collide, for any number of services."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.registry import Domain, RegistryError, ServiceSpec, load
from stack import ports
from stack.settings import StackSettings
from streams.sagas.definition import SagaDefinition, Step
from streams.sagas.plugin import SagaPlugin, SagaStart

REPO = Path(__file__).resolve().parents[2]
FRAMEWORK = ("stack", "connectors", "streams", "observe", "cli")


async def _ok(conn, cmd):
    return None


def _saga(participants: tuple[str, str]) -> SagaPlugin:
    from pydantic import BaseModel

    class Started(BaseModel):
        thing_id: int

    first, second = participants
    return SagaPlugin(
        definition=SagaDefinition(name="two-steps", steps=(
            Step(name="a", participant=first, command=None, compensation="UndoA"),
            Step(name="b", participant=second, command="DoB", pivot=True))),
        start=SagaStart(aggregate="thing", event_type="ThingStarted", model=Started, key="thing_id"),
        handlers={first: {"UndoA": _ok}, second: {"DoB": _ok}})


def test_every_installed_domain_is_enabled_by_default_and_a_selection_narrows_it():
    one = Domain("one", (ServiceSpec("alpha"),))
    two = Domain("two", (ServiceSpec("beta"),))
    assert [d.name for d in load("", {"one": one, "two": two}).domains] == ["one", "two"]
    assert [s.name for s in load("two", {"one": one, "two": two}).services] == ["beta"]
    with pytest.raises(RegistryError, match="unknown domain.*nope"):
        load("one,nope", {"one": one, "two": two})


def test_a_service_declared_twice_or_a_saga_with_an_unknown_participant_is_refused():
    with pytest.raises(RegistryError, match="'alpha' of domain two is also declared by domain one"):
        load("", {"one": Domain("one", (ServiceSpec("alpha"),)), "two": Domain("two", (ServiceSpec("alpha"),))})
    with pytest.raises(RegistryError, match="unknown participant 'gamma'"):
        load("", {"one": Domain("one", (ServiceSpec("alpha"),), sagas=(_saga(("alpha", "gamma")),))})


def test_the_saga_store_exists_only_when_a_domain_declares_a_saga():
    plain = load("", {"one": Domain("one", (ServiceSpec("alpha"),))})
    assert [s.name for s in plain.services] == ["alpha"]
    with_saga = load("", {"one": Domain("one", (ServiceSpec("alpha"), ServiceSpec("beta")),
                                        sagas=(_saga(("alpha", "beta")),))})
    assert [s.name for s in with_saga.services] == ["alpha", "beta", "orchestrator"]


def test_a_saga_step_without_its_handler_is_refused():
    with pytest.raises(ValueError, match="beta has no handler for DoB"):
        SagaPlugin(definition=_saga(("alpha", "beta")).definition, start=_saga(("alpha", "beta")).start,
                   handlers={"alpha": {"UndoA": _ok}})


def test_bad_service_names_and_private_columns_of_uncaptured_tables_are_refused():
    with pytest.raises(ValueError, match="lower-case"):
        ServiceSpec("Bad-Name")
    with pytest.raises(ValueError, match="does not capture"):
        ServiceSpec("alpha", captured_tables=("a",), private_columns={"b": ("secret",)})


def test_ports_for_a_dozen_services_collide_with_nothing(monkeypatch):
    names = [f"service_{i}" for i in range(12)] + ["orders", "payments", "orchestrator"]
    allocated = ports.allocate(names, 15400 + ports.PG_FIRST, ports.PG_COUNT)
    infra = {15400 + ports.KAFKA_OFFSET, 15400 + ports.CONTROLLER_OFFSET, 15400 + ports.CONNECT_OFFSET}
    assert len(set(allocated.values())) == len(names)
    assert not infra & set(allocated.values())
    assert all(15400 + ports.PG_FIRST <= p < 15400 + ports.WORKERS_FIRST for p in allocated.values())
    # a name keeps its port when another service is added (no collision with it)
    more = ports.allocate([*names, "service_12"], 15400 + ports.PG_FIRST, ports.PG_COUNT)
    assert all(more[n] == allocated[n] for n in names if more["service_12"] != allocated[n])


def test_colliding_names_probe_to_the_next_free_port():
    first = ports.allocate(["a"], 100, 1)
    assert first == {"a": 100}
    assert sorted(ports.allocate(["a", "b"], 100, 2).values()) == [100, 101]
    with pytest.raises(ValueError, match="do not fit"):
        ports.allocate(["a", "b", "c"], 100, 2)


def test_stack_settings_give_every_enabled_service_a_port_of_its_own(monkeypatch):
    monkeypatch.delenv("CDC_PORT_BASE", raising=False)
    s = StackSettings.from_env()
    every = [*s.pg_ports.values(), s.kafka_port, s.controller_port, s.connect_port]
    assert len(set(every)) == len(every)


def _domain_names() -> set[str]:
    """Every domain package under services/ and its service folders."""
    found: set[str] = set()
    for domain_dir in (REPO / "services").iterdir():
        if (domain_dir / "domain.py").exists():
            found.add(domain_dir.name)
            found |= {p.name for p in domain_dir.iterdir() if p.is_dir() and p.name != "__pycache__"}
    return found


def test_the_framework_names_no_domain():
    names = _domain_names()
    assert {"ecommerce", "orders"} <= names, names
    pattern = re.compile(r"\b(" + "|".join(sorted(names)) + r")\b")
    hits = []
    for folder in FRAMEWORK:
        for path in (REPO / folder).rglob("*"):
            if path.suffix in (".py", ".json", ".properties", ".xml") and "__pycache__" not in path.parts:
                for n, line in enumerate(path.read_text().splitlines(), 1):
                    if pattern.search(line):
                        hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not hits, "the framework names a domain or its services:\n" + "\n".join(hits)
