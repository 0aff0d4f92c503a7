"""`make bench` / `cdc bench`: the source ceiling, Debezium's capture rate and the sink-only race
against Debezium's JDBC sink connector, on the running stack, alternating runs; writes a
results folder (markdown, JSON, PNG). Needs `make up deploy`; leaves the stack as it found it."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient
from rich.console import Console

from bench import race, report, source
from bench.databases import BenchDatabases
from bench.peer import PeerConnect
from cli import stack_env
from stack.settings import StackSettings

out = Console()


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200_000, help="committed changes in the backlog")
    parser.add_argument("--runs", type=int, default=3, help="runs per side (median reported)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    env, settings = stack_env.load(), StackSettings.from_env()
    bootstrap, started = env["KAFKA_BOOTSTRAP_SERVERS"], time.strftime("%Y%m%d-%H%M%S")
    peer = PeerConnect(settings, port=settings.connect_port + 1)
    db = BenchDatabases.prepare(settings)
    topics: list[str] = []
    try:
        with out.status("starting the JDBC sink's own Connect worker") as status:
            peer.start()
            status.update("writing the backlog")
            source.create_table(db)
            source.create_slots(db, [f"ceiling_{i}" for i in range(args.runs)] +
                                [f"debezium_{i}" for i in range(args.runs)])
            backlog = source.write_backlog(db, args.changes)
            fingerprint = source.source_fingerprint(db)
            out.print(f"backlog: {backlog.changes:,} changes committed in {backlog.seconds:.1f}s; "
                      f"{fingerprint[0]:,} rows at the end")
            ceiling, captured = [], []
            expected_messages = backlog.changes + backlog.deletes  # each delete is followed by a tombstone
            for i in range(args.runs):  # alternate: drift of this shared machine hits both alike
                status.update(f"source run {i + 1}/{args.runs}: pgoutput decoding alone")
                messages, seconds = source.decode_ceiling(db, f"ceiling_{i}")
                ceiling.append(backlog.changes / seconds)
                status.update(f"source run {i + 1}/{args.runs}: Debezium capture")
                topic = f"bench-{started}-{i}.customers"
                rate = source.capture(db, env["CONNECT_URL"], bootstrap, topic, f"debezium_{i}", expected_messages)
                topics.append(topic)
                captured.append(rate)
                out.print(f"source run {i + 1}: pgoutput {ceiling[-1]:,.0f} changes/s ({messages:,} messages), "
                          f"Debezium {rate:,.0f} changes/s")
            races: list[race.RaceResult] = []
            for i in range(args.runs):
                status.update(f"sink run {i + 1}/{args.runs}: ours")
                races.append(race.run_ours(env, topics[0], backlog.changes, fingerprint, i))
                status.update(f"sink run {i + 1}/{args.runs}: JDBC sink")
                races.append(race.run_peer(peer, db.peer_url, db.password, topics[0], backlog.changes, fingerprint, i))
                for r in races[-2:]:
                    out.print(f"sink run {i + 1}: {r.side:<9} {r.events_per_s:>9,.0f} events/s, "
                              f"{r.cpu_per_1000:.3f} CPU-s/1k, peak {r.peak_rss_mb:,.0f} MB, "
                              f"{'correct' if r.correct else 'WRONG'}")
        meta = {"date": report.now(), "machine": report.machine(), "runs": args.runs,
                "command": f"make bench (python -m bench.run --changes {args.changes} --runs {args.runs})",
                "changes": backlog.changes, "inserts": backlog.inserts, "updates": backlog.updates,
                "deletes": backlog.deletes, "rows": fingerprint[0]}
        md = report.write(args.out / started, meta, ceiling, captured, races)
        out.print(f"[green]results:[/green] {md}")
        out.print(md.read_text(), markup=False, highlight=False)
        return md
    finally:
        peer.stop()
        db.drop()
        if topics:
            AdminClient({"bootstrap.servers": bootstrap}).delete_topics(topics, operation_timeout=30)


if __name__ == "__main__":
    main()
