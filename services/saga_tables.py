"""DDL every saga participant shares: the inbox that makes a command act at most once per
(saga, step, action), written in the same transaction as the effect and the reply."""
from __future__ import annotations

from alembic import op

SAGA_INBOX_DDL = """
CREATE TABLE saga_inbox (
    saga_id    text NOT NULL,
    step       integer NOT NULL,
    action     text NOT NULL CHECK (action IN ('action', 'compensation')),
    outcome    text NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
    reason     text,
    handled_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (saga_id, step, action)
);
"""


def create_saga_inbox() -> None:
    op.execute(SAGA_INBOX_DDL)

SAGA_WATCHES_DDL = """
-- choreographed sagas: what this participant asked a neighbour to do and waits for
CREATE TABLE saga_watches (
    saga_id       text NOT NULL,
    step          integer NOT NULL,
    phase         text NOT NULL CHECK (phase IN ('action', 'compensation')),
    attempt       integer NOT NULL,
    deadline      timestamptz NOT NULL,
    payload       jsonb NOT NULL,
    state         text NOT NULL CHECK (state IN ('waiting', 'answered', 'abandoned', 'failed')),
    retry_pending boolean NOT NULL DEFAULT false,
    cancel_only   boolean NOT NULL DEFAULT false,
    reason        text,
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (saga_id, step, phase)
);
-- due watches are scanned with FOR UPDATE SKIP LOCKED over this index
CREATE INDEX saga_watches_due ON saga_watches (deadline) WHERE state = 'waiting';
"""


def create_saga_watches() -> None:
    op.execute(SAGA_WATCHES_DDL)
