"""`cdc demo`: every enabled domain's demo, each in its own part, and the helpers they share:
show a domain's writes arriving on Kafka as Debezium captured them, its replicas converging,
and its sagas ending with the timeline of one."""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable

import psycopg
import typer
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.table import Table

from cli import stack_env
from connectors.acls import OBSERVER_GROUP_PREFIX
from schemas.envelope import ChangeEvent, MalformedEvent, Tombstone, parse_change
from schemas.outbox import parse_outbox
from services.registry import SAGA_STORE, DemoContext, current
from stack.kafka_client import OBSERVER, KafkaAccess, access

out = Console(width=120)
TERMINAL = ("COMPLETED", "COMPENSATED", "FAILED", "RESOLVED")


def demo(domain: list[str] = typer.Option(None, "--domain", help="Only this domain's part (repeatable).")) -> None:
    """Run the demo of every enabled domain (CDC_DOMAINS), each in its own part."""
    env = stack_env.load()
    tag = uuid.uuid4().hex[:6]
    domains = [d for d in current().domains if d.demo and (not domain or d.name in domain)]
    if not domains:
        out.print("[red]no enabled domain has a demo[/red]")
        raise typer.Exit(1)
    for d in domains:
        out.rule(f"[bold]{d.name}[/bold]: {d.description}")
        assert d.demo is not None
        d.demo(DemoContext(env=env, tag=tag, out=out))


def _consumer_at_end(kafka: KafkaAccess, topics: list[str]) -> Consumer:
    # the observer reads every topic; it may join only groups named cdc-observer-*
    consumer = Consumer(kafka.config(**{"group.id": f"{OBSERVER_GROUP_PREFIX}demo-{uuid.uuid4().hex[:6]}",
                                        "enable.auto.commit": False}))
    meta = consumer.list_topics(timeout=10)
    assignment = []
    for topic in topics:
        for p in meta.topics[topic].partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            assignment.append(TopicPartition(topic, p, high))
    consumer.assign(assignment)
    return consumer


def show_captured(ctx: DemoContext, row_topics: list[str], outbox_topics: list[str], write: Callable[[], int],
                  timeout: float = 60.0) -> None:
    """Call `write` (it returns how many changes it committed) and show their events arriving."""
    consumer = _consumer_at_end(access(ctx.env, OBSERVER), row_topics + outbox_topics)
    started = time.monotonic()
    expected = write()
    ctx.out.print(f"wrote {expected} changes (tag {ctx.tag}); waiting for their events ...")
    table = Table("topic", "key", "op / event type", "position (LSN)", "ms", title="captured change events")
    seen = 0
    try:
        while seen < expected and time.monotonic() - started < timeout:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            elapsed = f"{(time.monotonic() - started) * 1000:.0f}"
            try:
                if msg.topic() in outbox_topics:
                    event = parse_outbox(msg.key(), msg.value(), msg.headers())
                    table.add_row(msg.topic(), event.aggregate_id, event.event_type, "-", elapsed)
                    seen += 1
                    continue
                change = parse_change(msg.key(), msg.value())
            except MalformedEvent as exc:
                table.add_row(msg.topic(), str(msg.key()), f"[red]malformed: {exc}[/red]", "-", elapsed)
                continue
            if isinstance(change, Tombstone):
                continue
            assert isinstance(change, ChangeEvent)
            table.add_row(msg.topic(), json.dumps(change.row.get("id")), change.op, str(change.source.lsn), elapsed)
            seen += 1
    finally:
        consumer.close()
    ctx.out.print(table)
    if seen < expected:
        ctx.out.print(f"[red]only {seen} of {expected} events arrived within {timeout:.0f}s[/red]")
        raise SystemExit(1)
    ctx.out.print(f"[green]all {expected} changes captured[/green]: service DB -> Debezium -> Kafka")


def show_replication(ctx: DemoContext, pair_names: Iterable[str]) -> None:
    """Wait until the pairs converge (the workers of `make workers` apply them) and show each replica's newest row."""
    from cli.observe_cmd import _table
    from observe.replication import wait_converged
    from streams import spec as spec_mod

    spec = spec_mod.load_enabled()
    pairs = [spec.pair(n) for n in pair_names]
    with ctx.out.status("waiting for the replicas to converge"):
        reports = wait_converged(pairs, ctx.env, timeout=90)
    ctx.out.print(_table(reports))
    for pair in pairs:
        url = ctx.env[f"{current().service(pair.target.service).env_prefix}_DATABASE_URL"]
        key = next(iter(pair.key.values()))
        with psycopg.connect(url) as conn:
            cur = conn.execute(f"SELECT * FROM {pair.target.table} ORDER BY {key} DESC LIMIT 1")
            cols = [d.name for d in cur.description or []]
            row = cur.fetchone()
        ctx.out.print(f"{pair.target.service}.{pair.target.table} (newest): "
                      f"{dict(zip(cols, row, strict=True)) if row else '-'}")
    if not all(r.converged for r in reports):
        ctx.out.print("[red]replication did not converge[/red]")
        raise SystemExit(1)
    ctx.out.print("[green]replicas converged[/green]: Kafka -> Faust workers -> target databases "
                  "(private columns nowhere but their own service)")


def wait_sagas(ctx: DemoContext, saga: str, business_keys: list[str], timeout: float = 90.0) -> dict[str, str]:
    """State of each saga (by business key) once all ended, or at the deadline."""
    url = ctx.env[f"{SAGA_STORE.upper()}_OBSERVER_URL"]
    deadline = time.monotonic() + timeout
    with ctx.out.status(f"waiting for every {saga} saga to end"), psycopg.connect(url) as conn:
        while True:
            states: dict[str, str] = dict(conn.execute(
                "SELECT business_key, state FROM saga_instances WHERE split_part(saga_type, '/', 1) = %s "
                "AND business_key = ANY(%s)", (saga, business_keys)).fetchall())
            conn.commit()
            if all(states.get(k) in TERMINAL for k in business_keys) or time.monotonic() > deadline:
                return states
            time.sleep(0.3)


def show_timeline(ctx: DemoContext, business_key: str, what: str) -> None:
    from observe.sagas import timeline

    events = timeline(ctx.env[f"{SAGA_STORE.upper()}_OBSERVER_URL"], business_key)
    tl = Table("at", "event", "step", "action", "detail",
               title=f"timeline of {what} (cdc observe saga {business_key})")
    for at, kind, step, action, detail in events:
        tl.add_row(at.strftime("%H:%M:%S.%f")[:-3], kind, step or "", action or "", detail or "")
    ctx.out.print(tl)
