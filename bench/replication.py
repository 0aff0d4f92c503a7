"""`make bench-replication`: one real replication worker draining a topic pre-filled with N
change events (mixed c/u/d, shaped from a captured Debezium event) into an empty replica.
Prints events/s per run and the median. Needs the stack (`make up deploy`).

Timing: from the moment the worker holds its partitions (/healthz 200, polled every 10 ms)
to the moment the replica holds the final state of every key (polled every 10 ms)."""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import orjson
import psycopg
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.our_worker import our_worker
from bench.procstat import Meter
from cli import stack_env
from stack.kafka_client import ADMIN, KafkaAccess, access

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "unit" / "samples" / "customer_insert.json"
PARTITIONS = 3


def make_events(n: int, keys: int, seed: int) -> tuple[list[tuple[bytes, bytes]], int, int]:
    """Returns (events, expected row count, expected sum of final positions)."""
    template = json.loads(SAMPLE.read_text())["value"]
    rng = random.Random(seed)
    alive: dict[int, bool] = {}
    final: dict[int, int] = {}
    events = []
    for i in range(n):
        key = rng.randrange(1, keys + 1)
        position = 10_000_000 + i
        op = "c" if not alive.get(key) else ("d" if rng.random() < 0.1 else "u")
        after = None if op == "d" else {**template["after"], "id": key, "name": f"name-{key}-{i}",
                                         "country": rng.choice(["ES", "GB", "US"])}
        before = {"id": key} if op == "d" else None
        source = {**template["source"], "lsn": position, "ts_ms": int(time.time() * 1000)}
        value = orjson.dumps({"before": before, "after": after, "source": source, "op": op, "ts_ms": source["ts_ms"]})
        events.append((orjson.dumps({"id": key}), value))
        alive[key] = op != "d"
        final[key] = position
    return events, len(final), sum(final.values())


def prefill(kafka: KafkaAccess, topic: str, events: Iterable[tuple[bytes, bytes]]) -> None:
    """A new topic holding `events` (key, value), produced as fast as the broker takes them."""
    admin = AdminClient(kafka.config())
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)], operation_timeout=30)[topic].result()
    producer = Producer(kafka.config(**{"partitioner": "murmur2_random", "linger.ms": 20,
                         "batch.num.messages": 10000, "queue.buffering.max.messages": 500_000}))
    for key, value in events:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:  # the local queue is full: let it drain
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(120) == 0, "pre-fill did not complete"


def run_once(env: dict[str, str], events, expected_rows: int, expected_sum: int, run: int, batch_max: int,
             faust_drain: bool = False) -> tuple[float, float]:
    """(events/s, worker CPU-s per 1,000 events); `faust_drain`: the worker with Faust's own
    per-message drain (before the direct drain)."""
    name = f"bench-{os.getpid()}-{run}{'-fd' if faust_drain else ''}"
    topic = f"bench.replication.{name}"
    prefill(access(env, ADMIN), topic, events)
    try:
        with our_worker(env, name, topic, with_version=False, batch_max=batch_max,
                        extra_args=("--faust-drain",) if faust_drain else ()) as proc:
            started = time.monotonic()
            meter = Meter(proc.pid)
            meter.start()
            with psycopg.connect(env["INVENTORY_OBSERVER_URL"], autocommit=True) as conn:
                while True:
                    meter.sample()
                    row = conn.execute("SELECT count(*), coalesce(sum(cdc_position), 0) "
                                       "FROM bench_customers_replica").fetchone()
                    assert row is not None
                    rows, total = row
                    if rows == expected_rows and total == expected_sum:
                        break
                    if time.monotonic() - started > 600:
                        raise SystemExit(f"replica incomplete after 600 s: {rows}/{expected_rows} rows")
                    time.sleep(0.01)
            return len(events) / (time.monotonic() - started), meter.cpu / len(events) * 1000
    finally:
        AdminClient(access(env, ADMIN).config()).delete_topics(
            [topic, f"dlq.replication.{name}"], operation_timeout=30)


def ceiling_once(env: dict[str, str], events, run: int) -> float:
    """Faust alone on the same kind of topic: the first batch starts its clock, as close as it gets."""
    topic = f"bench.ceiling.{os.getpid()}-{run}"
    prefill(access(env, ADMIN), topic, events)
    try:
        res = subprocess.run([sys.executable, "-m", "bench.faust_ceiling", topic, str(len(events))], cwd=REPO,
                             env={**os.environ, **env}, capture_output=True, text=True, timeout=600)
        found = re.findall(r"(\d+)\s*$", res.stdout)  # the worker may prefix terminal control codes
        if not found:
            raise SystemExit(f"ceiling run failed:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
        return float(found[-1])
    finally:
        AdminClient(access(env, ADMIN).config()).delete_topics([topic], operation_timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-max", type=int, default=5000)
    parser.add_argument("--compare-drain", action="store_true",
                        help="also run the worker with Faust's own drain (--faust-drain), alternating")
    parser.add_argument("--no-ceiling", dest="ceiling", action="store_false",
                        help="skip the Faust-alone runs measured beside the worker")
    args = parser.parse_args()
    env = stack_env.load()
    events, rows, total = make_events(args.events, args.keys, seed=7)
    print(f"{args.events} change events over {args.keys} keys (c/u/d), {PARTITIONS} partitions, "
          f"batch <= {args.batch_max}; one worker, {args.runs} runs")
    rates: list[float] = []
    cpus: list[float] = []
    ceilings: list[float] = []
    before: list[tuple[float, float]] = []
    for run in range(args.runs):  # alternate, so drift of this shared machine hits both alike
        rate, cpu = run_once(env, events, rows, total, run, args.batch_max)
        rates.append(rate)
        cpus.append(cpu)
        if args.compare_drain:
            before.append(run_once(env, events, rows, total, run, args.batch_max, faust_drain=True))
        ceiling = ceiling_once(env, events, run) if args.ceiling else None
        if ceiling:
            ceilings.append(ceiling)
        print(f"  run {run + 1}: worker {rate:,.0f} events/s ({cpu:.3f} CPU-s/1k)"
              + (f", with Faust's own drain {before[-1][0]:,.0f} events/s ({before[-1][1]:.3f} CPU-s/1k)"
                 if before else "")
              + (f", Faust alone {ceiling:,.0f} events/s" if ceiling else ""), flush=True)
    print(f"median: {statistics.median(rates):,.0f} events/s, {statistics.median(cpus):.3f} CPU-s/1k (target >= 20,000)")
    if before:
        b_rate, b_cpu = statistics.median(r for r, _ in before), statistics.median(c for _, c in before)
        print(f"with Faust's own drain: {b_rate:,.0f} events/s, {b_cpu:.3f} CPU-s/1k; the direct drain: "
              f"{statistics.median(rates) / b_rate:.2f}x the events/s, {statistics.median(cpus) / b_cpu:.2f}x the CPU")
    if ceilings:
        ratio = statistics.median(rates) / statistics.median(ceilings)
        print(f"Faust alone (no apply, acks only): {statistics.median(ceilings):,.0f} events/s; "
              f"the worker reaches {ratio:.0%} of it")


if __name__ == "__main__":
    main()
