"""End-to-end latency: source commit -> row visible in the replica, at fixed offered rates from
an open-loop load generator (rows are inserted on a fixed schedule, whether or not the pipeline
keeps up), for ours and the JDBC sink, each behind the same live Debezium capture.

Measured with commit timestamps on both sides (`track_commit_timestamp`, same host clock): the
replica row's commit time minus the source row's. Each side starts at the topic's end (its
consumer group is moved there first), so it sees only the run's own rows."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from bench import source
from bench.databases import BenchDatabases
from connectors.connect_api import ConnectClient
from stack.kafka_client import KafkaAccess

INSERT = ("INSERT INTO customers (id, name, email, country, credit_limit, version) "
          "VALUES (%s, %s, %s, 'ES', 100, 0)")
PROBE_ID = 9_999_999  # below the latency rows, above the backlog's
COMMIT_TIMES = "SELECT {id}, extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM {table} WHERE {id} BETWEEN %s AND %s"


@dataclass(frozen=True)
class LatencyRun:
    side: str
    rate: int               # offered changes/s
    achieved: float         # what the generator managed (open loop: it may fall behind on a busy box)
    latencies_ms: tuple[float, ...]

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    @property
    def p50(self) -> float:
        return self.pct(0.50)

    @property
    def p95(self) -> float:
        return self.pct(0.95)

    @property
    def p99(self) -> float:
        return self.pct(0.99)

    @property
    def max(self) -> float:
        return max(self.latencies_ms)


def median_of(runs: list[LatencyRun], what: Callable[[LatencyRun], float]) -> float:
    return statistics.median(what(r) for r in runs)


def start_capture(db: BenchDatabases, connect_url: str, kafka: KafkaAccess, topic: str) -> str:
    """A live Debezium capture of the bench table into `topic` (its own slot), running until stopped."""
    source.create_capture_topic(kafka, topic)
    name = f"latency-{topic}"
    client = ConnectClient(connect_url)
    try:
        client.put_config(name, source.capture_config(db, topic, "latency"))
        client.wait_running([name], timeout=120)
    finally:
        client.close()
    # RUNNING is not streaming yet: wait until a probe row written now is in the topic
    with psycopg.connect(db.source_url, autocommit=True) as conn:
        conn.execute(INSERT, (PROBE_ID, "probe", "probe@example.org"))
    deadline = time.monotonic() + 120
    while source.topic_size(kafka, topic) < 1:
        if time.monotonic() > deadline:
            raise SystemExit(f"the latency capture streamed nothing into {topic} in 120 s; see the Connect log")
        time.sleep(0.1)
    return name


def stop_capture(connect_url: str, name: str) -> None:
    client = ConnectClient(connect_url)
    try:
        client.delete(name)
    finally:
        client.close()


def skip_to_end(kafka: KafkaAccess, group: str, topic: str) -> None:
    """Commit the topic's end offsets for `group` before it starts: it reads only what comes next."""
    probe = Consumer(kafka.config(**{"group.id": "cdc-bench-probe", "enable.auto.commit": False}))
    try:
        ends = [TopicPartition(topic, p, probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                for p in range(source.PARTITIONS)]
    finally:
        probe.close()
    admin = AdminClient(kafka.config())
    for fut in admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, ends)]).values():
        fut.result(timeout=30)


def offer(url: str, first_id: int, rate: int, seconds: float) -> tuple[int, float]:
    """Open loop: row k is inserted (its own transaction) at t0 + k/rate. Returns (rows, achieved rate)."""
    n = int(rate * seconds)
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.monotonic()
        done = 0
        while done < n:
            due = min(n, int((time.monotonic() - t0) * rate) + 1)
            if due > done:
                with conn.pipeline():
                    for k in range(done, due):
                        i = first_id + k
                        conn.execute(INSERT, (i, f"name-{i}", f"c{i}@example.org"))
                done = due
            else:
                time.sleep(max(0.0, t0 + done / rate - time.monotonic()))
        return n, n / (time.monotonic() - t0)


def commit_times(url: str, table: str, id_column: str, lo: int, hi: int) -> dict[int, float]:
    with psycopg.connect(url) as conn:
        try:
            rows = conn.execute(COMMIT_TIMES.format(id=id_column, table=table), (lo, hi)).fetchall()
        except psycopg.errors.UndefinedTable:  # the peer creates its table with its first batch
            return {}
    return {int(i): float(t) for i, t in rows}


def measure(db: BenchDatabases, side: str, rate: int, seconds: float, first_id: int, replica_url: str,
            replica_table: str, replica_id: str, timeout: float = 300) -> LatencyRun:
    rows, achieved = offer(db.source_url, first_id, rate, seconds)
    lo, hi = first_id, first_id + rows - 1
    deadline = time.monotonic() + timeout
    while True:
        seen = commit_times(replica_url, replica_table, replica_id, lo, hi)
        if len(seen) == rows:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{side} at {rate}/s: {len(seen)}/{rows} rows in the replica after {timeout:.0f}s")
        time.sleep(0.2)
    committed = commit_times(db.source_url, "customers", "id", lo, hi)
    latencies = tuple((seen[i] - committed[i]) * 1000 for i in range(lo, hi + 1))
    return LatencyRun(side, rate, achieved, latencies)


GOAL_RATE, GOAL_P99_MS = 1000, 500.0


def section(runs: list[LatencyRun], folder) -> tuple[str, list[str], object]:
    """The results page's latency table (medians over runs of each percentile) and its CDF plot."""
    rates = sorted({r.rate for r in runs})
    sides = [s for s in ("ours", "jdbc-sink") if any(r.side == s for r in runs)]
    lines = ["## End to end: source commit -> row visible in the replica", "",
             "Open-loop inserts at fixed rates behind one live Debezium capture; commit timestamps on both "
             "sides. Milliseconds, median over runs of each percentile.", "",
             "| offered changes/s | side | achieved/s | p50 | p95 | p99 | max |", "|---:|---|---:|---:|---:|---:|---:|"]
    med: dict[tuple[str, int], float] = {}
    for rate in rates:
        for side in sides:
            rs = [r for r in runs if r.side == side and r.rate == rate]
            med[(side, rate)] = median_of(rs, lambda r: r.p99)
            lines.append(f"| {rate:,} | {side} | {median_of(rs, lambda r: r.achieved):,.0f} | "
                         f"{median_of(rs, lambda r: r.p50):,.0f} | {median_of(rs, lambda r: r.p95):,.0f} | "
                         f"{med[(side, rate)]:,.0f} | {median_of(rs, lambda r: r.max):,.0f} |")
    if (("ours", GOAL_RATE) in med) and (("jdbc-sink", GOAL_RATE) in med):
        ours, peer = med[("ours", GOAL_RATE)], med[("jdbc-sink", GOAL_RATE)]
        met = ours < GOAL_P99_MS and ours <= peer
        lines += ["", f"At {GOAL_RATE:,} changes/s: p99 ours {ours:,.0f} ms, JDBC sink {peer:,.0f} ms "
                      f"(goal < {GOAL_P99_MS:.0f} ms and not worse than the peer: {'met' if met else 'not met'})."]
    lines += ["", "![latency](latency.png)", ""]
    _plot(folder, runs, rates, sides)
    data = [{"side": r.side, "rate": r.rate, "achieved": r.achieved, "p50": r.p50, "p95": r.p95, "p99": r.p99,
             "max": r.max, "rows": len(r.latencies_ms)} for r in runs]
    return "latency", lines, data


def _plot(folder, runs: list[LatencyRun], rates: list[int], sides: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plots are optional: `pip install -e '.[bench]'`
        return
    fig, axes = plt.subplots(1, len(rates), figsize=(4.2 * len(rates), 3.6), squeeze=False)
    for ax, rate in zip(axes[0], rates, strict=True):
        for side, color in zip(sides, ("#36c", "#c63"), strict=False):
            xs = sorted(x for r in runs if r.side == side and r.rate == rate for x in r.latencies_ms)
            if xs:
                ax.plot(xs, [i / len(xs) for i in range(1, len(xs) + 1)], color=color, label=side)
        ax.set_title(f"{rate:,} changes/s offered")
        ax.set_xlabel("ms, source commit -> replica commit")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction of changes (CDF)")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(folder / "latency.png", dpi=110)
    plt.close(fig)
