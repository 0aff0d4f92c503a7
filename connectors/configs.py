"""Loads the connector files: `base.json` holds the keys every source shares, each
`<service>.json` only what differs. Merged here, checked by `connectors.rules`."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
BASE_FILE = "base.json"


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
    return json.loads((config_dir / BASE_FILE).read_text())


def load_file(path: Path, base: dict[str, str]) -> ConnectorFile:
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path.name}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or "name" not in doc or not isinstance(doc.get("config"), dict):
        raise ValueError(f'{path.name}: expected {{"name": ..., "config": {{...}}}}')
    merged = {**base, **{k: str(v) for k, v in doc["config"].items()}}
    return ConnectorFile(name=doc["name"], config=merged, routed_topics=tuple(doc.get("routed_topics", ())), path=path)


def load_all(config_dir: Path = CONFIG_DIR, only: list[str] | None = None) -> list[ConnectorFile]:
    base = load_base(config_dir)
    files = [load_file(p, base) for p in sorted(config_dir.glob("*.json")) if p.name != BASE_FILE]
    if only:
        unknown = set(only) - {f.name for f in files}
        if unknown:
            raise ValueError(f"unknown connector(s): {', '.join(sorted(unknown))}; known: {', '.join(f.name for f in files)}")
        files = [f for f in files if f.name in only]
    return files
