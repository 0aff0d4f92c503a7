"""Runs the replication worker of one pair (`cdc worker --pair NAME`, `make workers` for all)."""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from faust import Worker

from connectors.topics import admin, ensure_topics
from streams import spec as spec_mod
from streams.app import WorkerSettings, create_app


def run(pair_name: str, ws: WorkerSettings, loglevel: str = "info", spec_path: Path | None = None) -> None:
    spec = spec_mod.load(spec_path)  # validated at start-up: a bad spec never starts a worker
    pair = spec.pair(pair_name)
    existing = admin(ws.kafka).list_topics(timeout=15).topics
    if pair.source_topic not in existing:
        raise SystemExit(f"source topic {pair.source_topic} does not exist: deploy the connectors first (make deploy)")
    ensure_topics(ws.kafka, [pair.dead_letter_topic])
    try:  # uvloop roughly halves the event loop's share of the per-event cost
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    app = create_app(pair, ws)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
