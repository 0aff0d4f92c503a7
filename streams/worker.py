"""Runs the replication worker of one pair (`cdc worker --pair NAME`, `make workers` for all)."""
from __future__ import annotations

import logging

from faust import Worker

from connectors.topics import ensure_topics
from streams import spec as spec_mod
from streams.app import WorkerSettings, create_app


def run(pair_name: str, ws: WorkerSettings, loglevel: str = "info") -> None:
    spec = spec_mod.load()  # validated at start-up: a bad spec never starts a worker
    pair = spec.pair(pair_name)
    ensure_topics(ws.bootstrap, [pair.dead_letter_topic])
    app = create_app(pair, ws)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
