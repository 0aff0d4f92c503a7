"""`cdc topics`: list the broker's topics and print a topic's newest messages as JSON lines, read as
the read-only observer principal (the broker requires credentials, so a plain console consumer
would need a client config file first)."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

import typer
from confluent_kafka import Consumer, Message, TopicPartition
from rich.console import Console
from rich.table import Table

from cli import stack_env
from connectors.acls import OBSERVER_GROUP_PREFIX
from stack.kafka_client import OBSERVER, access

app = typer.Typer(help="Kafka topics, read as the read-only observer.", no_args_is_help=True)
out = Console()


def start_offsets(watermarks: dict[int, tuple[int, int]], last: int) -> dict[int, int]:
    """Where to start each partition to see at least its `last` newest messages (never before its low mark)."""
    return {p: max(low, high - last) for p, (low, high) in watermarks.items()}


def _text(raw: str | bytes | None) -> Any:
    """A key or value as JSON if it parses, else as text (None stays None: a tombstone)."""
    if raw is None or isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def as_record(msg: Message) -> dict[str, Any]:
    headers: list[tuple[str, bytes | None]] = list(msg.headers() or [])  # type: ignore[arg-type]
    return {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
            "timestamp_ms": msg.timestamp()[1], "key": _text(msg.key()),
            "headers": {k: _text(v) for k, v in headers}, "value": _text(msg.value())}


def _consumer() -> Consumer:
    # the observer may join only groups named cdc-observer-*; nothing is committed
    kafka = access(stack_env.load(), OBSERVER)
    return Consumer(kafka.config(**{"group.id": f"{OBSERVER_GROUP_PREFIX}topics-{uuid.uuid4().hex[:6]}",
                                    "enable.auto.commit": False}))


@app.command("list")
def list_topics(internal: bool = typer.Option(False, "--internal", help="Also Connect's and Kafka's own topics.")) -> None:
    """Every topic with its partitions and message count (high - low watermark)."""
    consumer = _consumer()
    try:
        meta = consumer.list_topics(timeout=10)
        table = Table("topic", "partitions", "messages")
        for name in sorted(meta.topics):
            if name.startswith("_") and not internal:
                continue
            parts = meta.topics[name].partitions
            marks = [consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10) for p in parts]
            table.add_row(name, str(len(parts)), str(sum(high - low for low, high in marks)))
        out.print(table)
    finally:
        consumer.close()


@app.command("read")
def read(topic: str = typer.Argument(..., help="<service>.public.<table>, outbox.event.<aggregate>, dlq.<...>"),
         last: int = typer.Option(5, "--last", help="How many of the newest messages to print."),
         follow: bool = typer.Option(False, "--follow", "-f", help="Then keep printing new ones until Ctrl-C."),
         timeout: float = typer.Option(10.0, "--timeout", help="Seconds to wait for the messages already there.")) -> None:
    """Print a topic's newest messages, one JSON object a line (topic, partition, offset, key, headers, value)."""
    consumer = _consumer()
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            out.print(f"[red]no topic {topic}[/red] (`cdc topics list` shows them)")
            raise typer.Exit(1)
        marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in meta.partitions}
        starts = start_offsets(marks, last)
        consumer.assign([TopicPartition(topic, p, off) for p, off in starts.items()])
        backlog = _read_until(consumer, starts, {p: high for p, (_, high) in marks.items()}, timeout)
        for record in sorted(backlog, key=lambda r: (r["timestamp_ms"], r["partition"], r["offset"]))[-last:]:
            print(json.dumps(record), flush=True)
        while follow:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                print(json.dumps(as_record(msg)), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


def _read_until(consumer: Consumer, starts: dict[int, int], ends: dict[int, int], timeout: float) -> list[dict[str, Any]]:
    """Every message from each partition's start up to its end offset as it was at the start (or until the timeout)."""
    records: list[dict[str, Any]] = []
    next_offset = dict(starts)
    deadline = time.monotonic() + timeout
    while any(next_offset[p] < end for p, end in ends.items()) and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        partition, offset = msg.partition() or 0, msg.offset() or 0
        next_offset[partition] = offset + 1
        if offset < ends[partition]:
            records.append(as_record(msg))
    return records
