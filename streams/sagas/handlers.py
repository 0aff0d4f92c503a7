"""What a participant's handler is: it does one saga command inside the transaction the
participant runtime opened (inbox row and reply are written beside it). A handler that refuses
returns a reason and changes nothing; a domain registers its handlers per participant service
(`streams.sagas.plugin.SagaPlugin.handlers`)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

import psycopg

from schemas.saga import SagaCommand

Outcome = str | None  # None: succeeded; a string: failed, with the reason
Handler = Callable[[psycopg.AsyncConnection, SagaCommand], Awaitable[Outcome]]
