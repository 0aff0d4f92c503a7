"""orchestrator: the choreographed sagas' monitor records each event once.

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE saga_monitor_seen (event_id text PRIMARY KEY, seen_at timestamptz NOT NULL DEFAULT now())")
