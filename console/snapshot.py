"""What the console shows, gathered from the stack on each request: each hop of the data's path
with its live state, sagas, dead letters. Nothing here is computed twice: the figures come from
observe/ and operate/, which the CLI uses too."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx
import psycopg

from services.registry import current
from stack.settings import StackSettings

OK, DOWN, WARN = "ok", "down", "warn"


@dataclass(frozen=True)
class Hop:
    kind: str    # database, connector, pair
    name: str
    state: str   # ok, down, warn
    detail: str


def _database(name: str, url: str) -> Hop:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return Hop("database", name, OK, "accepting connections")
    except psycopg.Error as exc:
        return Hop("database", name, DOWN, str(exc).splitlines()[0][:160])


def _connectors(env: Mapping[str, str]) -> list[Hop]:
    from connectors.connect_api import ConnectClient

    try:
        client = ConnectClient(env.get("CONNECT_URLS") or env["CONNECT_URL"], timeout=3)
    except Exception as exc:  # noqa: BLE001 - shown, not raised: the page must render when Connect is down
        return [Hop("connector", "Kafka Connect", DOWN, str(exc)[:160])]
    try:
        hops = []
        for name in client.names():
            s = client.status(name)
            healthy = s.connector == "RUNNING" and all(t == "RUNNING" for t in s.tasks)
            hops.append(Hop("connector", name, OK if healthy else DOWN, f"{s.connector}; tasks {', '.join(s.tasks) or 'none'}"))
        return hops
    except Exception as exc:  # noqa: BLE001
        return [Hop("connector", "Kafka Connect", DOWN, str(exc)[:160])]
    finally:
        client.close()


def _worker(name: str, port: int) -> Hop:
    try:
        resp = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=3)
        body = resp.json()
    except (httpx.HTTPError, ValueError):
        return Hop("worker", name, DOWN, f"no answer on :{port} (not started with `make workers`?)")
    return Hop("worker", name, OK if resp.status_code == 200 else WARN, str(body.get("reason") or "healthy")[:160])


def path(env: Mapping[str, str]) -> dict[str, list[Hop]]:
    """Every hop, in the data's order: service databases -> connectors -> workers -> target databases."""
    from cli.workers_cmd import background_workers
    from streams import spec as spec_mod

    settings = StackSettings.from_env()
    services = current().services
    databases = {s.name: _database(s.name, env[f"{s.env_prefix}_OBSERVER_URL"]) for s in services}
    pairs = spec_mod.load_enabled().pairs
    ports = {w.name: w.port for w in background_workers(settings, None)}
    workers = [_worker(p.name, ports[p.name]) for p in pairs if p.name in ports]
    sources = sorted({p.source.service for p in pairs})
    targets = sorted({p.target.service for p in pairs})
    return {
        "sources": [databases[n] for n in sources if n in databases],
        "connectors": _connectors(env),
        "workers": workers,
        "targets": [databases[n] for n in targets if n in databases],
        "other databases": [h for n, h in databases.items() if n not in sources and n not in targets],
    }
