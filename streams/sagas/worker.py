"""Runs one saga worker: the orchestrator, or one participant (`cdc saga-worker NAME`)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from faust import Worker

from connectors.topics import ensure_topics
from streams.sagas.apps import SagaWorkerSettings, create_orchestrator_app, create_participant_app
from streams.sagas.handlers import HANDLERS

NAMES = ("orchestrator", *HANDLERS)


def run(name: str, ws: SagaWorkerSettings, loglevel: str = "info") -> None:
    if name not in NAMES:
        raise SystemExit(f"unknown saga worker {name!r}; known: {', '.join(NAMES)}")
    ensure_topics(ws.bootstrap, [f"dlq.saga.{name}"])
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = create_orchestrator_app(ws) if name == "orchestrator" else create_participant_app(name, ws)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    sys.argv = [sys.argv[0], "worker"]  # Faust's Worker reads argv
    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
