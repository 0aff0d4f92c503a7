"""The domains the pipeline serves, discovered, never named by the framework.

A domain is a package (this repository's `services/<domain>/`, or a user's own installed
package) that exposes a `Domain` through the `cdc.domains` entry point group:

    [project.entry-points."cdc.domains"]
    mydomain = "mypackage.domain:DOMAIN"

Which domains run is configuration: CDC_DOMAINS=a,b (default: every one installed). Everything
per service (ports, roles, publications, slots, connector configs, `make env` names) is derived
from `ServiceSpec.name` by the framework, once.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.read_models.plugin import ReadModel
    from streams.sagas.plugin import SagaPlugin

ENTRY_POINT_GROUP = "cdc.domains"
DOMAINS_ENV = "CDC_DOMAINS"
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
DEBEZIUM_ROLE = "cdc_debezium"
OBSERVER_ROLE = "cdc_observer"
# Tables the framework's migrations give every service database (services/db/).
OUTBOX_TABLE = "outbox"
SIGNAL_TABLE = "debezium_signal"
HEARTBEAT_TABLE = "debezium_heartbeat"
# The framework's own service: the saga store (orchestrated saga state, and the choreography's
# monitor). It exists when an enabled domain declares a saga.
SAGA_STORE = "orchestrator"


@dataclass(frozen=True)
class ServiceSpec:
    """One service: its own database (and role), what its connector captures, what it publishes."""
    name: str
    captured_tables: tuple[str, ...] = ()
    migrations: Path | None = None   # its own alembic folder (business tables); None: framework tables only
    aggregates: tuple[str, ...] = ()  # outbox aggregatetypes it publishes: topics outbox.event.<aggregate>
    # table -> columns that never leave the service (not captured, never replicated)
    private_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # alembic folder of framework tables only this service has (the saga store); None for domain services
    framework_migrations: Path | None = None
    # table -> columns its change events are keyed by instead of the primary key, so every change
    # of one entity (e.g. the clicks of one link) lands on one partition, in order: a read model
    # that keeps per-entity state needs that (Debezium's message.key.columns)
    event_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not SERVICE_NAME.match(self.name):
            raise ValueError(f"service name {self.name!r}: lower-case letters, digits and '_', 2-31 characters")
        for table in self.private_columns:
            if table not in self.captured_tables:
                raise ValueError(f"service {self.name}: private columns of {table!r}, which it does not capture")
        for table, columns in self.event_keys.items():
            if table not in self.captured_tables or not columns:
                raise ValueError(f"service {self.name}: event key of {table!r}: a captured table and at least one column")

    @property
    def database(self) -> str:
        return self.name

    @property
    def role(self) -> str:
        """The service's own role: owns its database, runs its migrations."""
        return f"{self.name}_service"

    @property
    def publication(self) -> str:
        return f"cdc_{self.name}"

    @property
    def slot(self) -> str:
        return f"cdc_{self.name}"

    @property
    def env_prefix(self) -> str:
        return self.name.upper()

    @property
    def connector(self) -> str:
        return f"{self.name}-source"


@dataclass(frozen=True)
class Component:
    """A process a domain needs beside its services (an external provider it calls, a mail
    server), started by `make up` like the rest. Its address is in `make env` as <NAME>_URL."""
    name: str                  # lower-case; the pid, log and data folder are named after it
    module: str                # run as `python -m <module> --port P --data DIR`
    scheme: str = "http"       # of its URL in `make env`
    health: str | None = "/healthz"  # HTTP path answered 200 once ready; None: ready once the port accepts

    def __post_init__(self) -> None:
        if not SERVICE_NAME.match(self.name):
            raise ValueError(f"component name {self.name!r}: lower-case letters, digits and '_'")

    @property
    def env_name(self) -> str:
        return f"{self.name.upper()}_URL"


@dataclass(frozen=True)
class DemoContext:
    env: dict[str, str]   # `make env`
    tag: str              # random per run: sample data never collides with earlier runs
    out: Any              # a rich Console


@dataclass(frozen=True)
class Domain:
    name: str
    services: tuple[ServiceSpec, ...]
    replication: Path | None = None           # the domain's replication pairs (JSON, see streams/spec.py)
    sagas: tuple[SagaPlugin, ...] = ()
    demo: Callable[[DemoContext], None] | None = None
    description: str = ""
    components: tuple[Component, ...] = ()
    read_models: tuple[ReadModel, ...] = ()   # state folded from topics by Faust tables, flushed to a service's database


class RegistryError(ValueError):
    pass


def _installed() -> dict[str, Domain]:
    found: dict[str, Domain] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        domain = ep.load()
        if not isinstance(domain, Domain):
            raise RegistryError(f"entry point {ep.name} = {ep.value} is not a services.registry.Domain")
        if domain.name in found:
            raise RegistryError(f"two installed packages declare the domain {domain.name!r}")
        found[domain.name] = domain
    return found


def saga_store() -> ServiceSpec:
    # saga states are captured (a dashboard may follow them), their start payloads are not: they may
    # hold personal data that only the steps' commands carry, each its own fields
    return ServiceSpec(SAGA_STORE, captured_tables=("saga_instances",), private_columns={"saga_instances": ("payload",)},
                       framework_migrations=Path(__file__).resolve().parent / "db" / "saga_store")


@dataclass(frozen=True)
class Registry:
    domains: tuple[Domain, ...]

    @property
    def services(self) -> tuple[ServiceSpec, ...]:
        own = tuple(s for d in self.domains for s in d.services)
        return (*own, saga_store()) if any(d.sagas for d in self.domains) else own

    @property
    def components(self) -> tuple[Component, ...]:
        return tuple(c for d in self.domains for c in d.components)

    @property
    def sagas(self) -> tuple[SagaPlugin, ...]:
        return tuple(s for d in self.domains for s in d.sagas)

    @property
    def read_models(self) -> tuple[ReadModel, ...]:
        return tuple(m for d in self.domains for m in d.read_models)

    def read_model(self, name: str) -> ReadModel:
        for m in self.read_models:
            if m.name == name:
                return m
        raise KeyError(f"unknown read model {name!r}; enabled: {', '.join(m.name for m in self.read_models) or 'none'}")

    def service(self, name: str) -> ServiceSpec:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(f"unknown service {name!r}; known: {', '.join(s.name for s in self.services)}")

    def domain(self, name: str) -> Domain:
        for d in self.domains:
            if d.name == name:
                return d
        raise KeyError(f"unknown domain {name!r}; known: {', '.join(d.name for d in self.domains)}")

    def check(self) -> Registry:
        seen: dict[str, str] = {SAGA_STORE: "the framework"}
        for d in self.domains:
            for s in d.services:
                if s.name in seen:
                    raise RegistryError(f"service {s.name!r} of domain {d.name} is also declared by {seen[s.name]}")
                seen[s.name] = f"domain {d.name}"
        components = [c.name for c in self.components]
        if len(set(components)) != len(components):
            raise RegistryError(f"component names repeat: {components}")
        for saga in self.sagas:
            for participant in saga.participants:
                if participant not in seen or participant == SAGA_STORE:
                    raise RegistryError(f"saga {saga.name}: unknown participant {participant!r}; "
                                        f"services: {', '.join(sorted(seen))}")
        models = [m.name for m in self.read_models]
        if len(set(models)) != len(models):
            raise RegistryError(f"read model names repeat: {models}")
        for model in self.read_models:
            if model.service not in seen or model.service == SAGA_STORE:
                raise RegistryError(f"read model {model.name}: unknown service {model.service!r}")
        return self


def load(selection: str | None = None, installed: Mapping[str, Domain] | None = None) -> Registry:
    """The enabled domains: `selection` (comma-separated names) or every installed one."""
    available = dict(installed) if installed is not None else _installed()
    if not selection:
        return Registry(tuple(available[n] for n in sorted(available))).check()
    wanted = [n.strip() for n in selection.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise RegistryError(f"{DOMAINS_ENV} names unknown domain(s) {', '.join(unknown)}; "
                            f"installed: {', '.join(sorted(available)) or 'none'}")
    return Registry(tuple(available[n] for n in wanted)).check()


@lru_cache(maxsize=8)
def _current(selection: str) -> Registry:
    return load(selection)


def current() -> Registry:
    """The registry of this process's configuration (CDC_DOMAINS), loaded once."""
    return _current(os.environ.get(DOMAINS_ENV, ""))
