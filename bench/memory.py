"""Worker memory over a long run: one replication worker replicates N distinct rows (default
1,000,000 inserts, pre-filled into a topic) and its resident memory is sampled from /proc as
the replica fills. Flat means: what it holds does not grow with the rows it has written."""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import psycopg
from confluent_kafka.admin import AdminClient

from bench.our_worker import REPLICA, our_worker
from bench.procstat import rss_mb
from bench.replication import SAMPLE, prefill
from stack.kafka_client import ADMIN, access

GOAL_MB = 300.0


@dataclass(frozen=True)
class MemoryRun:
    rows: int
    seconds: float
    samples: tuple[tuple[int, float], ...]   # (rows in the replica, worker RSS MB)

    @property
    def peak_mb(self) -> float:
        return max(mb for _, mb in self.samples)

    def rss_at(self, fraction: float) -> float:
        """RSS when the replica first held `fraction` of the rows."""
        target = self.rows * fraction
        return next((mb for rows, mb in self.samples if rows >= target), self.samples[-1][1])

    @property
    def growth_mb_per_100k(self) -> float:
        """Least-squares slope over the second half of the run (start-up and warm-up excluded)."""
        half = [(r, mb) for r, mb in self.samples if r >= self.rows / 2]
        if len(half) < 2:
            return 0.0
        n = len(half)
        mx, my = sum(r for r, _ in half) / n, sum(mb for _, mb in half) / n
        var = sum((r - mx) ** 2 for r, _ in half)
        return 0.0 if var == 0 else sum((r - mx) * (mb - my) for r, mb in half) / var * 100_000


def inserts(rows: int) -> Iterator[tuple[bytes, bytes]]:
    """`rows` insert events with distinct keys, shaped from a captured Debezium event (made as produced)."""
    template = json.loads(SAMPLE.read_text())["value"]
    now = int(time.time() * 1000)
    for i in range(1, rows + 1):
        yield orjson.dumps({"id": i}), orjson.dumps({
            "before": None, "after": {**template["after"], "id": i, "name": f"name-{i}"},
            "source": {**template["source"], "lsn": 20_000_000 + i, "ts_ms": now}, "op": "c", "ts_ms": now})


def run(env: dict[str, str], rows: int, sample_every: float = 0.5, timeout: float = 1800) -> MemoryRun:
    kafka = access(env, ADMIN)
    name = f"bench-memory-{os.getpid()}"
    topic = f"bench.memory.{name}"
    prefill(kafka, topic, inserts(rows))
    samples: list[tuple[int, float]] = []
    try:
        with our_worker(env, name, topic, with_version=False) as proc, \
                psycopg.connect(env["INVENTORY_OBSERVER_URL"], autocommit=True) as conn:
            started = time.monotonic()
            while True:
                row = conn.execute(f"SELECT count(*) FROM {REPLICA}").fetchone()
                done = row[0] if row else 0
                samples.append((done, rss_mb(proc.pid)))
                if done >= rows:
                    break
                if time.monotonic() - started > timeout:
                    raise SystemExit(f"memory run: {done:,}/{rows:,} rows after {timeout:.0f}s")
                time.sleep(sample_every)
            return MemoryRun(rows, time.monotonic() - started, tuple(samples))
    finally:
        AdminClient(kafka.config()).delete_topics([topic, f"dlq.replication.{name}"],
                                                                    operation_timeout=30)


def section(m: MemoryRun, folder: Path) -> tuple[str, list[str], object]:
    flat = m.peak_mb < GOAL_MB and m.growth_mb_per_100k < 5  # shrinking is fine
    lines = [f"## Worker memory over {m.rows:,} rows", "",
             f"One replication worker, {m.rows:,} distinct rows (inserts) in {m.seconds:,.0f} s "
             f"({m.rows / m.seconds:,.0f} rows/s); resident memory sampled every 0.5 s.", "",
             "| replica filled | 10% | 50% | 100% | peak | growth over the second half |",
             "|---|---:|---:|---:|---:|---:|",
             f"| RSS (MB) | {m.rss_at(0.1):,.0f} | {m.rss_at(0.5):,.0f} | {m.rss_at(1.0):,.0f} | {m.peak_mb:,.0f} | "
             f"{m.growth_mb_per_100k:+.1f} MB per 100k rows |", "",
             f"Goal: flat and < {GOAL_MB:.0f} MB: {'met' if flat else 'not met'}.", "", "![memory](memory.png)", ""]
    _plot(folder, m)
    return "memory", lines, {"rows": m.rows, "seconds": m.seconds, "peak_mb": m.peak_mb,
                             "growth_mb_per_100k": m.growth_mb_per_100k, "samples": m.samples}


def _plot(folder: Path, m: MemoryRun) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot([r for r, _ in m.samples], [mb for _, mb in m.samples], color="#36c")
    ax.axhline(GOAL_MB, color="#c33", linestyle="--", label=f"goal {GOAL_MB:.0f} MB")
    ax.set_xlabel("rows in the replica")
    ax.set_ylabel("worker RSS (MB)")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(folder / "memory.png", dpi=110)
    plt.close(fig)
