"""Where in the WAL a choreographed participant wrote the event its watch waits on: until its
connector's slot confirms that position, the event has not been captured, and the watch's
deadline is the pipeline's, not the asked participant's.

Revision ID: cdc0003
"""
from alembic import op

revision = "cdc0003"
down_revision = "cdc0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE saga_watches ADD COLUMN sent_lsn pg_lsn")
