"""Framework tables of every service database: the outbox (EventRouter shape), Debezium's signal
and heartbeat tables, the saga participant's inbox and watches, and the replication sources.

Revision ID: cdc0001
"""
from alembic import op

revision = "cdc0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE outbox (
    id            uuid PRIMARY KEY,
    aggregatetype varchar(255) NOT NULL,
    aggregateid   varchar(255) NOT NULL,
    type          varchar(255) NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE debezium_signal (
    id   varchar(64) PRIMARY KEY,
    type varchar(32) NOT NULL,
    data text
);
CREATE TABLE debezium_heartbeat (
    id integer PRIMARY KEY,
    ts timestamptz NOT NULL
);
-- a saga command acts at most once per (saga, step, action), in the transaction of its effect
CREATE TABLE saga_inbox (
    saga_id    text NOT NULL,
    step       integer NOT NULL,
    action     text NOT NULL CHECK (action IN ('action', 'compensation')),
    outcome    text NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
    reason     text,
    handled_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (saga_id, step, action)
);
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
    saga_type     text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (saga_id, step, phase)
);
-- due watches are scanned with FOR UPDATE SKIP LOCKED over this index
CREATE INDEX saga_watches_due ON saga_watches (deadline) WHERE state = 'waiting';
-- in a replication target: which source cluster each pair was filled from (LSNs compare only within one)
CREATE TABLE cdc_replication_sources (
    pair             text PRIMARY KEY,
    source_system_id text NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);
""")
