"""The connector configs: `base.json` holds the keys every source shares; what differs per
service (database, slot, publication, captured tables, columns kept out, routed outbox topics) is
derived from the service's declaration (`services.registry.ServiceSpec`), never written by
hand. Merged here, checked by `connectors.rules`; `cdc deploy --dry-run` prints them."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from services.registry import HEARTBEAT_TABLE, OUTBOX_TABLE, ServiceSpec, current

CONFIG_DIR = Path(__file__).resolve().parent
BASE_FILE = "base.json"
ROUTED_PREFIX = "outbox.event."  # the EventRouter's route.topic.replacement in base.json


@dataclass(frozen=True)
class ConnectorFile:
    name: str
    config: dict[str, str]
    routed_topics: tuple[str, ...] = field(default=())
    path: Path | None = None

    @property
    def topic_prefix(self) -> str:
        return self.config.get("topic.prefix", "")

    def row_topics(self) -> list[str]:
        """Topics of the captured row tables: <prefix>.<schema>.<table>; the outbox is routed instead."""
        tables = [t.strip() for t in self.config.get("table.include.list", "").split(",") if t.strip()]
        return [f"{self.topic_prefix}.{t}" for t in tables if not t.endswith(".outbox")]

    def heartbeat_topic(self) -> str:
        return f"__debezium-heartbeat.{self.topic_prefix}"

    def signal_topic(self) -> str | None:
        """The signal table is captured too (Debezium reads signals and writes snapshot watermarks there)."""
        table = self.config.get("signal.data.collection")
        return f"{self.topic_prefix}.{table}" if table else None

    def all_topics(self) -> list[str]:
        signal = self.signal_topic()
        return [*self.row_topics(), *self.routed_topics, self.heartbeat_topic(), *([signal] if signal else [])]


def load_base(config_dir: Path = CONFIG_DIR) -> dict[str, str]:
    try:
        return json.loads((config_dir / BASE_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{BASE_FILE}: not valid JSON: {exc}") from None


def service_config(svc: ServiceSpec) -> dict[str, str]:
    """What one service's connector adds to the base; secrets and hosts stay ${env:...} placeholders."""
    env = f"CDC_{svc.env_prefix}"
    config = {
        "database.hostname": f"${{env:{env}_DB_HOST}}",
        "database.port": f"${{env:{env}_DB_PORT}}",
        "database.password": f"${{env:{env}_DEBEZIUM_PASSWORD}}",
        "database.dbname": svc.database,
        "topic.prefix": svc.name,
        "slot.name": svc.slot,
        "publication.name": svc.publication,
        "table.include.list": ",".join(f"public.{t}" for t in (*svc.captured_tables, OUTBOX_TABLE, HEARTBEAT_TABLE)),
        "transforms.sysid.static.value": f"${{env:{env}_SYSTEM_ID}}",
    }
    private = [f"public.{table}.{col}" for table, cols in sorted(svc.private_columns.items()) for col in cols]
    if private:  # never captured: not in Kafka either (before and after images alike)
        config["column.exclude.list"] = ",".join(private)
    if svc.event_keys:  # one entity's changes on one partition, in order (a read model's per-entity state)
        config["message.key.columns"] = ";".join(f"public.{table}:{','.join(cols)}"
                                                 for table, cols in sorted(svc.event_keys.items()))
    return config


def for_service(svc: ServiceSpec, base: dict[str, str]) -> ConnectorFile:
    from streams.sagas.topics import routed_aggregates

    routed = tuple(ROUTED_PREFIX + a for a in routed_aggregates(current(), svc))
    return ConnectorFile(name=svc.connector, config={**base, **service_config(svc)}, routed_topics=routed)


def load_all(config_dir: Path = CONFIG_DIR, only: list[str] | None = None) -> list[ConnectorFile]:
    base = load_base(config_dir)
    files = [for_service(svc, base) for svc in current().services]
    if only:
        unknown = set(only) - {f.name for f in files}
        if unknown:
            raise ValueError(f"unknown connector(s): {', '.join(sorted(unknown))}; known: {', '.join(f.name for f in files)}")
        files = [f for f in files if f.name in only]
    return files
