"""The services of the example domain: one database (and one PostgreSQL instance) each.

This table is the one place that names them; the stack launcher, the connector configs
and the tests all read it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    name: str
    # Row tables Debezium captures with its native envelope (the outbox is captured too,
    # but routed by the EventRouter SMT;
    # its routed topics are listed in the service's connector file).
    captured_tables: tuple[str, ...]

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


DEBEZIUM_ROLE = "cdc_debezium"
OBSERVER_ROLE = "cdc_observer"
# Tables every service database has for the CDC machinery itself.
OUTBOX_TABLE = "outbox"
SIGNAL_TABLE = "debezium_signal"
HEARTBEAT_TABLE = "debezium_heartbeat"

SERVICES: tuple[Service, ...] = (
    Service("orders", ("customers", "orders", "order_items")),
    Service("payments", ("payments",)),
    Service("inventory", ("stock_items",)),
    Service("invoicing", ("invoices",)),
    Service("shipping", ("shipments",)),
    Service("orchestrator", ("saga_instances",)),
)

BY_NAME: dict[str, Service] = {s.name: s for s in SERVICES}


def get(name: str) -> Service:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(BY_NAME)}") from None
