"""Connector supervision: poll Kafka Connect, restart FAILED connectors and tasks with back-off
per connector, count the restarts. Connect never restarts a failed task by itself: a database
that was away for longer than Debezium's own retries leaves capture stopped until someone acts.
`cdc connectors watch` runs this loop with /healthz and /metrics, and writes what it knows to a
state file that `cdc connectors status` shows."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from connectors.connect_api import ConnectorState

log = logging.getLogger(__name__)


class Connect(Protocol):
    def status(self, name: str) -> ConnectorState: ...
    def restart_failed(self, name: str) -> None: ...


@dataclass
class Watched:
    state: str = "UNKNOWN"          # connector state, then task states: RUNNING/RUNNING
    restarts: int = 0               # restarts this process asked Connect for
    last_failure: str | None = None  # first line of the last failure's trace
    delay: float = 0.0              # back-off before the next restart
    next_try: float = 0.0           # monotonic time of the next restart allowed


@dataclass
class Supervisor:
    client: Connect
    names: list[str]
    first_delay: float = 2.0
    max_delay: float = 120.0
    clock: Callable[[], float] = time.monotonic
    watched: dict[str, Watched] = field(default_factory=dict)

    def tick(self) -> None:
        for name in self.names:
            w = self.watched.setdefault(name, Watched(delay=self.first_delay))
            try:
                s = self.client.status(name)
            except Exception as exc:  # noqa: BLE001 - Connect away or the connector not deployed: say so, go on
                w.state = f"unknown ({type(exc).__name__})"
                continue
            w.state = "/".join([s.connector, *s.tasks])
            if s.running:
                w.delay = self.first_delay  # healthy again: the next failure starts a new back-off
                continue
            if not s.failed:
                continue
            if s.trace:
                w.last_failure = s.trace.strip().splitlines()[0][:500]
            now = self.clock()
            if now < w.next_try:
                continue
            try:
                self.client.restart_failed(name)
            except Exception as exc:  # noqa: BLE001 - try again after the back-off
                log.warning("%s: restart refused (%s)", name, exc)
            else:
                w.restarts += 1
                log.warning("%s FAILED (%s): restart %d; next one not before %.0fs", name, w.last_failure,
                            w.restarts, w.delay)
            w.next_try = now + w.delay
            w.delay = min(w.delay * 2, self.max_delay)

    def snapshot(self) -> dict[str, dict]:
        return {n: {k: v for k, v in asdict(w).items() if k in ("state", "restarts", "last_failure")}
                for n, w in self.watched.items()}


def write_state(path: Path, supervisor: Supervisor, slots: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"at": time.time(), "connectors": supervisor.snapshot(), "slots": slots}))
    tmp.replace(path)


def read_state(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
