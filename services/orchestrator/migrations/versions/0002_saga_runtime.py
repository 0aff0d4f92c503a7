"""orchestrator: saga instances with their state machine's state, and a timeline per saga.

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
ALTER TABLE saga_instances
    ADD COLUMN step      integer NOT NULL DEFAULT 0,
    ADD COLUMN phase     text NOT NULL DEFAULT 'action',
    ADD COLUMN attempt   integer NOT NULL DEFAULT 1,
    ADD COLUMN deadline  timestamptz,
    ADD COLUMN completed integer[] NOT NULL DEFAULT '{}',
    ADD COLUMN reason    text;
-- timeouts are scanned by any orchestrator worker: FOR UPDATE SKIP LOCKED over this index
CREATE INDEX saga_instances_due ON saga_instances (deadline) WHERE state IN ('RUNNING', 'COMPENSATING');
CREATE TABLE saga_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    saga_id   uuid NOT NULL REFERENCES saga_instances (id),
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind      text NOT NULL,          -- started, sent, replied, timed_out, ended
    step      integer,
    step_name text,
    action    text,
    detail    text
);
CREATE INDEX saga_events_saga ON saga_events (saga_id, id);
""")
