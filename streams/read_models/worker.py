"""Runs the worker of one read model (`cdc readmodel worker NAME`; `make workers` starts every one)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time

from confluent_kafka import KafkaException
from faust import Worker

from connectors.topics import admin, ensure_topics
from services.registry import current
from stack.kafka_client import KafkaAccess
from streams.read_models.runtime import ReadModelSettings, create_app


def _topics(kafka: KafkaAccess, patience: float = 90.0) -> set[str]:
    """The broker's topics; a broker slow to answer (a loaded machine) is waited for, not a reason to exit."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return set(admin(kafka).list_topics(timeout=15).topics)
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            logging.getLogger(__name__).warning("the broker does not answer yet; asking again")


def run(name: str, ws: ReadModelSettings, loglevel: str = "info") -> None:
    model = current().read_model(name)
    existing = _topics(ws.kafka)
    missing = [t for t in (*model.sources, *model.changelog_topics) if t not in existing]
    if missing:
        raise SystemExit(f"topics {', '.join(missing)} do not exist: deploy first (make deploy)")
    ensure_topics(ws.kafka, [model.dead_letter_topic])
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = create_app(model, ws)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    sys.argv = [sys.argv[0], "worker"]  # Faust's Worker reads argv
    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
