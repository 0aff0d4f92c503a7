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
