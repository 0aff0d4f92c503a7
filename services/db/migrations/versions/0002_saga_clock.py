"""The saga timeout scanners' clock: when each scanner (the orchestrator, or a choreographed
participant's watch scan) last ran, so one that was away (killed, its database down) moves every
pending deadline by the gap instead of timing out sagas whose answers it could not read.

Revision ID: cdc0002
"""
from alembic import op

revision = "cdc0002"
down_revision = "cdc0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE saga_clock (
    scanner   text PRIMARY KEY,
    ticked_at timestamptz NOT NULL
);
""")
