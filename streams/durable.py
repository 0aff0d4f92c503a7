"""Work on a database that outlives its outages: one connection reopened after a failure, and
a loop that waits out transient errors with back-off and stops the process on a wrong
deployment (exit 70, nothing acknowledged). Used by the saga runtime and the replicas' purge."""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable

import psycopg

from schemas.envelope import MalformedEvent
from streams.errors import ErrorKind, classify
from streams.liveness import Liveness
from streams.replicator import Backoff

log = logging.getLogger(__name__)
EXIT_UNAPPLIABLE = 70  # nothing acknowledged: redelivered once the deployment is fixed


class Database:
    """One connection per actor, reopened after a failure."""

    def __init__(self, dsn: str, name: str) -> None:
        self.dsn, self.name = dsn, name
        self.conn: psycopg.AsyncConnection | None = None

    async def get(self) -> psycopg.AsyncConnection:
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=5,
                                                              application_name=self.name)
        return self.conn


async def run_durably(what: str, db: Database, work: Callable[[psycopg.AsyncConnection], Awaitable[object]],
                      liveness: Liveness | None = None) -> None:
    """Retry transient failures in place; a wrong deployment stops the process unacknowledged."""
    delays = Backoff().delays()
    while True:
        try:
            await work(await db.get())
            return
        except Exception as exc:  # noqa: BLE001 - every error is classified
            kind = classify(exc)
            if kind is ErrorKind.TRANSIENT:
                delay = next(delays)
                log.warning("%s: database unavailable (%s); retrying in %.1fs", what, exc, delay)
                if liveness is None:
                    await asyncio.sleep(delay)
                else:
                    with liveness.retrying():  # waiting on purpose is not a stall
                        await asyncio.sleep(delay)
                continue
            if bad_message(exc):
                raise MalformedEvent(f"{type(exc).__name__}: {exc}") from exc
            log.critical("%s: cannot go on: %s. Exiting without acknowledging.", what, exc)
            logging.shutdown()
            os._exit(EXIT_UNAPPLIABLE)


def bad_message(exc: Exception) -> bool:
    """The message, not the deployment or the database, is wrong: dead-letter it (the saga's
    timeout takes over)."""
    return classify(exc) is ErrorKind.BAD_ROWS or isinstance(exc, (KeyError, ValueError, TypeError, ArithmeticError))
