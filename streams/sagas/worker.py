"""Runs one saga worker (`cdc saga-worker NAME`). The mode is configuration
(`--mode`, `CDC_SAGA_MODE`): orchestrated (the orchestrator and the participants) or
choreographed (the participants and a passive monitor), the same participants' logic in both."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from faust import Worker

from connectors.topics import ensure_topics
from streams.sagas.apps import SagaWorkerSettings, create_orchestrator_app, create_participant_app
from streams.sagas.enabled import enabled
from streams.sagas.handover import hand_over_starts

MODES = ("orchestration", "choreography")
# The worker that is not a participant: it drives the sagas (orchestrator) or only records them (monitor).
COORDINATOR = {"orchestration": "orchestrator", "choreography": "monitor"}


def names(mode: str) -> tuple[str, ...]:
    if mode not in MODES:
        raise ValueError(f"unknown saga mode {mode!r}; known: {', '.join(MODES)}")
    participants = enabled().participants(mode)
    return (COORDINATOR[mode], *participants) if participants else ()


def run(name: str, ws: SagaWorkerSettings, mode: str = "orchestration", loglevel: str = "info") -> None:
    if name not in names(mode):
        raise SystemExit(f"unknown saga worker {name!r} in the {mode} mode; known: {', '.join(names(mode))}")
    ensure_topics(ws.kafka, [f"dlq.saga.{name}"])
    hand_over_starts(ws.kafka, mode, name)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if mode == "choreography":
        from streams.sagas.choreography_apps import create_choreography_participant_app, create_monitor_app

        app = create_monitor_app(ws) if name == "monitor" else create_choreography_participant_app(name, ws)
    else:
        app = create_orchestrator_app(ws) if name == "orchestrator" else create_participant_app(name, ws)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    sys.argv = [sys.argv[0], "worker"]  # Faust's Worker reads argv
    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
