"""Sink-only race: ours (one replication worker) and the peer (the JDBC sink connector) each
drain the same captured topic into an empty replica. The clock runs from the moment the side
holds its partitions (worker /healthz 200; connector task RUNNING) until its replica holds the
source's final state (row count and version sum, polled); then the whole replica is compared
with the source (a fast wrong answer does not count)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.our_worker import our_worker
from bench.peer import PeerConnect, jdbc_sink_config, jdbc_url
from bench.procstat import Meter
from bench.source import FINGERPRINT
from connectors.connect_api import ConnectClient

REPO = Path(__file__).resolve().parents[1]
POLL = 0.05


@dataclass(frozen=True)
class RaceResult:
    side: str
    events: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    correct: bool

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu_seconds / self.events * 1000


def _wait_converged(url: str, query: str, expected: tuple[int, int], meter: Meter, what: str,
                    timeout: float = 900) -> float:
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            meter.sample()
            try:
                row = conn.execute(query).fetchone()
            except psycopg.errors.UndefinedTable:  # the peer creates its table with the first batch
                row = None
            if row is not None and (row[0], row[1]) == expected:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise SystemExit(f"{what}: replica incomplete after {timeout:.0f}s: {row} != {expected}")
            time.sleep(POLL)


def _matches(url: str, query: str, source: tuple[int, int, str]) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    return row is not None and (row[0], row[1], row[2]) == source


def run_ours(env: dict[str, str], topic: str, events: int, source: tuple[int, int, str], run: int,
             batch_max: int = 5000, faust_drain: bool = False) -> RaceResult:
    """`faust_drain`: the worker with Faust's own per-message drain (`cdc worker --faust-drain`),
    the before side of the direct drain (streams/direct_drain.py)."""
    side = "ours-faust-drain" if faust_drain else "ours"
    name = f"bench-race-{os.getpid()}-{run}{'-faust-drain' if faust_drain else ''}"
    extra = ("--faust-drain",) if faust_drain else ()
    with our_worker(env, name, topic, with_version=True, batch_max=batch_max, extra_args=extra) as proc:
        meter = Meter(proc.pid)
        meter.start()
        table = "bench_customers_replica WHERE NOT cdc_deleted"
        query = FINGERPRINT.format(id="orders_customer_id", version="version", table=table)
        seconds = _wait_converged(env["INVENTORY_OBSERVER_URL"], query, source[:2], meter, "ours")
        correct = _matches(env["INVENTORY_OBSERVER_URL"], query, source)
        return RaceResult(side, events, seconds, meter.cpu, meter.peak_mb, correct)


def run_peer(peer: PeerConnect, peer_url: str, password: str, topic: str, events: int,
             source: tuple[int, int, str], run: int) -> RaceResult:
    table = f"customers_r{run}"
    name = f"bench-jdbc-sink-{os.getpid()}-{run}"
    config = jdbc_sink_config(topic, table, jdbc_url(peer_url), "cdc_bench", password)
    client = ConnectClient(peer.url)
    assert peer.pid is not None
    meter = Meter(peer.pid)
    try:
        client.put_config(name, config)
        client.wait_running([name], timeout=120)
        meter.start()
        query = FINGERPRINT.format(id="id", version="version", table=table)
        seconds = _wait_converged(peer_url, query, source[:2], meter, "the JDBC sink")
        correct = _matches(peer_url, query, source)
        return RaceResult("jdbc-sink", events, seconds, meter.cpu, meter.peak_mb, correct)
    finally:
        client.delete(name)
        client.close()
