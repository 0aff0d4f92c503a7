"""What a participant's handler is: it does one saga command inside the transaction the
participant runtime opened (inbox row and reply are written beside it). A handler that refuses
returns a reason and changes nothing; a domain registers its handlers per participant service
(`streams.sagas.plugin.SagaPlugin.handlers`).

What a handler raises is classified (`streams.errors.classify`): a transient error (a database or
network connection lost: OSError, psycopg's OperationalError) rolls the batch back and it is
retried with back-off; a bad message (KeyError, ValueError, TypeError, a data error) is
dead-lettered alone; anything else is taken for a wrong deployment and stops the worker with exit
70, unacknowledged. So a handler that calls an outside system maps that client's errors onto
these (e.g. an HTTP timeout to ConnectionError) or returns a refusal."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

import psycopg

from schemas.saga import SagaCommand

Outcome = str | None  # None: succeeded; a string: failed, with the reason
Handler = Callable[[psycopg.AsyncConnection, SagaCommand], Awaitable[Outcome]]
