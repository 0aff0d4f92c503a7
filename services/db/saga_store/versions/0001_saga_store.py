"""The saga store: saga instances with their state machine's state (orchestrated), or as the
choreography's monitor recorded them, a timeline per saga, and the events the monitor saw.

Revision ID: store0001
"""
from alembic import op

revision = "store0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE saga_instances (
    id            uuid PRIMARY KEY,
    saga_type     text NOT NULL,
    business_key  text,              -- what the definition names its sagas by (an order id, a sign-up id)
    state         text NOT NULL,
    payload       jsonb NOT NULL,
    step          integer NOT NULL DEFAULT 0,
    phase         text NOT NULL DEFAULT 'action',
    attempt       integer NOT NULL DEFAULT 1,
    deadline      timestamptz,
    completed     integer[] NOT NULL DEFAULT '{}',
    reason        text,
    retry_pending boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- timeouts are scanned by any orchestrator worker: FOR UPDATE SKIP LOCKED over this index
CREATE INDEX saga_instances_due ON saga_instances (deadline) WHERE state IN ('RUNNING', 'COMPENSATING');
CREATE INDEX saga_instances_business_key ON saga_instances (business_key);
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
CREATE TABLE saga_monitor_seen (event_id text PRIMARY KEY, seen_at timestamptz NOT NULL DEFAULT now());
""")
