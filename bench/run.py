"""`make bench` / `cdc bench`: the source ceiling, Debezium's capture rate, the sink-only race
against Debezium's JDBC sink connector, end-to-end latency at fixed offered rates, worker memory
over a long run and saga throughput, on the running stack, alternating runs; writes a results
folder (markdown, JSON, PNG). Needs `make up deploy`; leaves the stack as it found it."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient
from rich.console import Console

from bench import analytics, latency, memory, race, report, sagas, source
from bench.databases import BenchDatabases
from bench.our_worker import our_worker
from bench.peer import PeerConnect, jdbc_sink_config, jdbc_url
from cli import stack_env
from connectors.connect_api import ConnectClient
from stack.kafka_client import ADMIN, access
from stack.settings import StackSettings

out = Console()
PHASES = ("source", "sink", "latency", "memory", "sagas", "analytics")
DATABASE_PHASES = {"source", "sink", "latency", "memory"}   # those that need the bench's own databases


def _source_and_sink(args, env, db: BenchDatabases, peer: PeerConnect, started: str, status, topics: list[str],
                     meta: dict) -> tuple[list[float], list[float], list[race.RaceResult]]:
    kafka = access(env, ADMIN)
    status.update("writing the backlog")
    source.create_slots(db, [f"ceiling_{i}" for i in range(args.runs)] + [f"debezium_{i}" for i in range(args.runs)])
    backlog = source.write_backlog(db, args.changes)
    fingerprint = source.source_fingerprint(db)
    out.print(f"backlog: {backlog.changes:,} changes committed in {backlog.seconds:.1f}s; {fingerprint[0]:,} rows at the end")
    meta.update(changes=backlog.changes, inserts=backlog.inserts, updates=backlog.updates, deletes=backlog.deletes,
                rows=fingerprint[0])
    ceiling, captured = [], []
    expected_messages = backlog.changes + backlog.deletes  # each delete is followed by a tombstone
    for i in range(args.runs):  # alternate: drift of this shared machine hits both alike
        status.update(f"source run {i + 1}/{args.runs}: pgoutput decoding alone")
        messages, seconds = source.decode_ceiling(db, f"ceiling_{i}")
        ceiling.append(backlog.changes / seconds)
        status.update(f"source run {i + 1}/{args.runs}: Debezium capture")
        topic = f"bench-{started}-{i}.customers"
        rate = source.capture(db, env["CONNECT_URL"], kafka, topic, f"debezium_{i}", expected_messages)
        topics.append(topic)
        captured.append(rate)
        out.print(f"source run {i + 1}: pgoutput {ceiling[-1]:,.0f} changes/s ({messages:,} messages), "
                  f"Debezium {rate:,.0f} changes/s")
    races: list[race.RaceResult] = []
    if "sink" not in args.phases:
        return ceiling, captured, races
    for i in range(args.runs):
        status.update(f"sink run {i + 1}/{args.runs}: ours")
        races.append(race.run_ours(env, topics[0], backlog.changes, fingerprint, i))
        if args.compare_drain:
            status.update(f"sink run {i + 1}/{args.runs}: ours with Faust's own drain")
            races.append(race.run_ours(env, topics[0], backlog.changes, fingerprint, i, faust_drain=True))
        status.update(f"sink run {i + 1}/{args.runs}: JDBC sink")
        races.append(race.run_peer(peer, db.peer_url, db.password, topics[0], backlog.changes, fingerprint, i))
        for r in races[-(3 if args.compare_drain else 2):]:
            out.print(f"sink run {i + 1}: {r.side:<16} {r.events_per_s:>9,.0f} events/s, {r.cpu_per_1000:.3f} CPU-s/1k, "
                      f"peak {r.peak_rss_mb:,.0f} MB, {'correct' if r.correct else 'WRONG'}")
    return ceiling, captured, races


def _latency(args, env, db: BenchDatabases, peer: PeerConnect, started: str, status,
             topics: list[str]) -> list[latency.LatencyRun]:
    kafka = access(env, ADMIN)
    topic = f"bench-{started}-live.customers"
    topics.append(topic)
    status.update("latency: starting a live Debezium capture")
    capture = latency.start_capture(db, env["CONNECT_URL"], kafka, topic)
    runs: list[latency.LatencyRun] = []
    next_id = 10_000_000  # above the backlog's ids

    def measure(side: str, url: str, table: str, id_column: str) -> None:
        nonlocal next_id
        for rate in args.rates:
            status.update(f"latency: {side} at {rate:,} changes/s")
            r = latency.measure(db, side, rate, args.latency_seconds, next_id, url, table, id_column)
            next_id += int(rate * args.latency_seconds) + 1
            runs.append(r)
            out.print(f"latency {side:<9} {rate:>6,}/s offered ({r.achieved:,.0f} achieved): p50 {r.p50:,.0f} ms, "
                      f"p95 {r.p95:,.0f}, p99 {r.p99:,.0f}, max {r.max:,.0f}")

    try:
        for i in range(args.runs):
            name = f"bench-latency-{os.getpid()}-{i}"
            latency.skip_to_end(kafka, f"cdc-replication-{name}", topic)
            with our_worker(env, name, topic, with_version=True):
                measure("ours", env["INVENTORY_DATABASE_URL"], "bench_customers_replica", "orders_customer_id")
            sink, table = f"bench-jdbc-latency-{os.getpid()}-{i}", f"customers_lat_{i}"
            latency.skip_to_end(kafka, f"connect-{sink}", topic)
            client = ConnectClient(peer.url)
            try:
                client.put_config(sink, jdbc_sink_config(topic, table, jdbc_url(db.peer_url), "cdc_bench", db.password))
                client.wait_running([sink], timeout=120)
                measure("jdbc-sink", db.peer_url, table, "id")
            finally:
                client.delete(sink)
                client.close()
    finally:
        latency.stop_capture(env["CONNECT_URL"], capture)
    return runs


def _sagas(args, env, status, started: str) -> list[sagas.SagaRun]:
    runs: list[sagas.SagaRun] = []
    for i in range(args.saga_runs):
        for mode in ("orchestration", "choreography"):  # alternate the modes, each with its own workers
            status.update(f"sagas: starting the {mode} workers")
            with sagas.saga_workers(env, mode):
                for rate in args.saga_rates:
                    status.update(f"sagas: {mode} at {rate:g} sagas/s")
                    r = sagas.measure(env, mode, rate, args.saga_seconds, f"{started}-{i}-{mode}-{rate:g}")
                    runs.append(r)
                    out.print(f"sagas {mode:<13} {rate:>5g}/s offered: {r.achieved:,.1f}/s ended, p50 "
                              f"{r.pct(0.5) / 1000:.2f} s, p99 {r.pct(0.99) / 1000:.2f} s; hops (ms) "
                              + ", ".join(f"{h.split(' ', 1)[1]} {ms:,.0f}" for h, ms in r.hops_ms.items()))
    return runs


def _refuse_running_saga_workers(settings: StackSettings) -> None:
    from cli.workers_cmd import running_saga_workers
    from streams.sagas.worker import MODES

    running = [f"{m}:{n}" for m in MODES for n in running_saga_workers(settings, m)]
    if running:
        raise SystemExit(f"saga workers are running in the background ({', '.join(running)}): the saga bench "
                         "starts its own, in both modes; stop them first (make workers-stop)")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200_000, help="committed changes in the backlog")
    parser.add_argument("--runs", type=int, default=3, help="runs per side (median reported)")
    parser.add_argument("--phases", type=lambda s: s.split(","), default=list(PHASES),
                        help=f"comma-separated subset of {','.join(PHASES)} (sink needs source)")
    parser.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], default=[200, 1000, 3000],
                        help="offered changes/s of the latency phase")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="load duration per rate")
    parser.add_argument("--memory-rows", type=int, default=1_000_000, help="distinct rows of the memory run")
    parser.add_argument("--saga-rates", type=lambda s: [float(x) for x in s.split(",")], default=[10, 25, 50, 100],
                        help="offered sagas/s of the saga phase")
    parser.add_argument("--saga-seconds", type=float, default=15.0, help="load duration per saga rate")
    parser.add_argument("--saga-runs", type=int, default=1, help="runs per mode and rate of the saga phase")
    parser.add_argument("--analytics-rate", type=float, default=200, help="offered redirects/s of the analytics phase")
    parser.add_argument("--analytics-seconds", type=float, default=60, help="load duration of the analytics phase")
    parser.add_argument("--analytics-links", type=int, default=20, help="short links the analytics load spreads over")
    parser.add_argument("--compare-drain", action="store_true",
                        help="sink phase: also race our worker with Faust's own drain (--faust-drain), alternating")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}; known: {', '.join(PHASES)}")
    if "sink" in args.phases and "source" not in args.phases:
        args.phases.append("source")
    env, settings = stack_env.load(), StackSettings.from_env()
    if "sagas" in args.phases:
        _refuse_running_saga_workers(settings)
    kafka, started = access(env, ADMIN), time.strftime("%Y%m%d-%H%M%S")
    peer = PeerConnect(settings, port=settings.connect_port + 1)
    db = BenchDatabases.prepare(settings) if DATABASE_PHASES & set(args.phases) else None
    topics: list[str] = []
    meta = {"date": report.now(), "machine": report.machine(), "runs": args.runs,
            "command": f"make bench (python -m bench.run --changes {args.changes} --runs {args.runs} "
                       f"--phases {','.join(args.phases)})"}
    ceiling: list[float] = []
    captured: list[float] = []
    races: list[race.RaceResult] = []
    extra: list[report.Section] = []
    folder = args.out / started
    try:
        with out.status("starting the JDBC sink's own Connect worker") as status:
            if {"sink", "latency"} & set(args.phases):
                peer.start()
            if db is not None:
                source.create_table(db)
            if "source" in args.phases:
                assert db is not None
                ceiling, captured, races = _source_and_sink(args, env, db, peer, started, status, topics, meta)
            if "latency" in args.phases:
                assert db is not None
                extra.append(latency.section(_latency(args, env, db, peer, started, status, topics), folder))
            if "memory" in args.phases:
                status.update(f"memory: one worker replicating {args.memory_rows:,} rows")
                m = memory.run(env, args.memory_rows)
                out.print(f"memory: {m.rows:,} rows in {m.seconds:,.0f} s, peak RSS {m.peak_mb:,.0f} MB, "
                          f"{m.growth_mb_per_100k:+.1f} MB per 100k rows over the second half")
                extra.append(memory.section(m, folder))
            if "sagas" in args.phases:
                extra.append(sagas.section(_sagas(args, env, status, started), folder))
            if "analytics" in args.phases:
                status.update(f"analytics: {args.analytics_rate:g} redirects/s for {args.analytics_seconds:g} s")
                with analytics.read_model_worker(env):
                    a = analytics.measure(env, args.analytics_rate, args.analytics_seconds, args.analytics_links, started)
                out.print(f"analytics: {a.load.served_per_s:,.1f} redirects/s served of {a.rate:g} offered, lag p50 "
                          f"{a.lag(0.5):,.0f} ms, p99 {a.lag(0.99):,.0f} ms, {'exact' if a.exact else 'NOT exact'}")
                extra.append(analytics.section([a], folder))
        md = report.write(folder, meta, ceiling, captured, races, extra)
        out.print(f"[green]results:[/green] {md}")
        out.print(md.read_text(), markup=False, highlight=False)
        return md
    finally:
        peer.stop()
        if db is not None:
            db.drop()
        if topics:
            AdminClient(kafka.config()).delete_topics(topics, operation_timeout=30)


if __name__ == "__main__":
    main()
