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


def watch_state(settings: StackSettings) -> dict | None:
    """What `cdc connectors watch` (started by `make workers`) last wrote: restarts per connector
    and each slot's lag, refreshed every few seconds; None while no watch runs."""
    import time

    from cli.connectors_cmd import watch_state_file
    from connectors.supervisor import read_state

    state = read_state(watch_state_file(settings))
    return state if state and time.time() - state.get("at", 0) < 60 else None


def _connector_detail(name: str, watch: dict | None) -> tuple[str, bool]:
    """Restarts and slot lag of one connector from the watch, and whether its slot is in trouble."""
    if watch is None:
        return "restarts and slot lag: the connector watch is not running (make workers)", False
    restarts = watch.get("connectors", {}).get(name, {}).get("restarts", 0)
    parts, trouble = [f"restarts {restarts}"], False
    for slot in (x for x in watch.get("slots", []) if x.get("connector") == name):
        retained = slot.get("retained_bytes")
        parts.append(f"slot {slot['slot']} retains {retained / 1024:,.0f} KiB" if retained is not None
                     else f"slot {slot['slot']}: no position")
        if slot.get("problems"):
            parts.append("; ".join(slot["problems"]))
            trouble = True
    return "; ".join(parts), trouble


def _connectors(env: Mapping[str, str]) -> list[Hop]:
    from connectors.connect_api import ConnectClient

    try:
        client = ConnectClient(env.get("CONNECT_URLS") or env["CONNECT_URL"], timeout=3)
    except Exception as exc:  # noqa: BLE001 - shown, not raised: the page must render when Connect is down
        return [Hop("connector", "Kafka Connect", DOWN, str(exc)[:160])]
    watch = watch_state(StackSettings.from_env())
    try:
        hops = []
        for name in client.names():
            s = client.status(name)
            healthy = s.connector == "RUNNING" and all(t == "RUNNING" for t in s.tasks)
            detail, slot_trouble = _connector_detail(name, watch)
            state = DOWN if not healthy else WARN if slot_trouble else OK
            hops.append(Hop("connector", name, state, f"{s.connector}; tasks {', '.join(s.tasks) or 'none'}; {detail}"))
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
    progress = f"lag {body.get('lag', '?')}, last progress {body.get('seconds_since_progress', '?')} s ago"
    reason = str(body.get("reason") or "healthy")
    return Hop("worker", name, OK if resp.status_code == 200 else WARN, f"{reason}; {progress}"[:200])


def _topics(env: Mapping[str, str], topics: list[str]) -> list[Hop]:
    """Each source topic with its end offsets (messages ever written, per partition)."""
    from confluent_kafka import Consumer, TopicPartition

    from connectors.acls import OBSERVER_GROUP_PREFIX
    from stack.kafka_client import OBSERVER, access

    try:
        consumer = Consumer(access(env, OBSERVER).config(**{"group.id": f"{OBSERVER_GROUP_PREFIX}console",
                                                            "enable.auto.commit": False}))
    except Exception as exc:  # noqa: BLE001 - shown: the page renders when the broker is away
        return [Hop("topic", "Kafka", DOWN, str(exc)[:160])]
    try:
        meta = consumer.list_topics(timeout=5)
        hops = []
        for t in topics:
            if t not in meta.topics:
                hops.append(Hop("topic", t, DOWN, "missing (make deploy creates it)"))
                continue
            ends = [consumer.get_watermark_offsets(TopicPartition(t, p), timeout=5)[1] for p in sorted(meta.topics[t].partitions)]
            hops.append(Hop("topic", t, OK, f"end offsets {ends} ({sum(ends):,} messages)"))
        return hops
    except Exception as exc:  # noqa: BLE001
        return [Hop("topic", "Kafka", DOWN, str(exc)[:160])]
    finally:
        consumer.close()


def path(env: Mapping[str, str]) -> dict[str, list[Hop]]:
    """Every hop, in the data's order: service databases -> connectors -> topics -> workers -> target databases."""
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
        "topics": _topics(env, sorted({p.source_topic for p in pairs})),
        "workers": workers,
        "targets": [databases[n] for n in targets if n in databases],
        "other databases": [h for n, h in databases.items() if n not in sources and n not in targets],
    }


@dataclass(frozen=True)
class PairView:
    name: str
    report: object | None      # observe.replication.PairReport, None when it could not be read
    error: str | None


def pairs(env: Mapping[str, str]) -> list[PairView]:
    """Every enabled pair as `cdc observe` reports it (rows, checksums, positions, lag)."""
    from streams import spec as spec_mod

    return [_view(p, env) for p in spec_mod.load_enabled().pairs]


def _view(pair, env: Mapping[str, str]) -> PairView:
    from observe.replication import check_pair

    try:
        return PairView(pair.name, check_pair(pair, dict(env)), None)
    except Exception as exc:  # noqa: BLE001 - a database down: shown on the page, the rest still render
        return PairView(pair.name, None, str(exc).splitlines()[0][:200])


@dataclass(frozen=True)
class PairDetail:
    view: PairView
    source: str
    target: str
    columns: list[str]
    newest: list[tuple]        # the replica's rows most recently applied
    letters: list              # operate.letters.Letter of the pair's dead-letter topic


def pair_detail(env: Mapping[str, str], name: str, rows: int = 20) -> PairDetail | None:
    from psycopg import sql

    from operate import letters
    from stack.kafka_client import OPERATOR, access
    from streams import spec as spec_mod

    try:
        p = spec_mod.load_enabled().pair(name)
    except KeyError:
        return None
    view = _view(p, env)
    target = current().service(p.target.service)
    columns: list[str] = []
    newest: list[tuple] = []
    try:
        with psycopg.connect(env[f"{target.env_prefix}_OBSERVER_URL"], connect_timeout=3) as conn:
            cur = conn.execute(sql.SQL("SELECT * FROM {} ORDER BY cdc_applied_at DESC LIMIT %s")
                               .format(sql.Identifier(p.replica_table)), (rows,))
            columns = [c.name for c in cur.description or ()]
            newest = cur.fetchall()
    except psycopg.Error:
        pass  # the database is down: the report above says so
    found = letters.read_topic(access(env, OPERATOR), p.dead_letter_topic)
    return PairDetail(view, f"{p.source.service}.{p.source.table}", f"{p.target.service}.{p.replica_table}",
                      columns, newest, found)


def participants_of(saga_type: str) -> dict[str, str]:
    """Step name -> participant of a saga type's definition ('place-order', 'place-order/choreographed')."""
    from streams.sagas.enabled import enabled

    try:
        defn = enabled().definition(saga_type.split("/")[0])
    except KeyError:
        return {}
    return {s.name: s.participant for s in defn.steps}
