"""Which database errors are worth waiting out, which are bad rows, and which stop the worker."""
from __future__ import annotations

from enum import Enum

import psycopg

from streams.sink import FatalSinkError


class ErrorKind(Enum):
    TRANSIENT = "transient"  # database down or busy: retry the batch with back-off
    BAD_ROWS = "bad_rows"    # some rows violate the target's types/constraints: find them, dead-letter them
    FATAL = "fatal"          # wrong deployment (missing table, no privilege): stop before acknowledging


TRANSIENT_CLASSES = ("08", "53", "57", "40", "55")  # connection, resources, shutdown, rollback, lock
BAD_ROW_CLASSES = ("22", "23")                       # data exception, integrity constraint


def classify(exc: BaseException) -> ErrorKind:
    if isinstance(exc, FatalSinkError):
        return ErrorKind.FATAL
    if isinstance(exc, (OSError, TimeoutError)):
        return ErrorKind.TRANSIENT
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        if state is None:
            # no server answer: connection refused, reset or closed is worth waiting out; a value
            # the client refuses to send (e.g. a NUL in text) is a bad row
            if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
                return ErrorKind.TRANSIENT
            return ErrorKind.BAD_ROWS
        if state.startswith(TRANSIENT_CLASSES):
            return ErrorKind.TRANSIENT
        if state.startswith(BAD_ROW_CLASSES):
            return ErrorKind.BAD_ROWS
    return ErrorKind.FATAL
