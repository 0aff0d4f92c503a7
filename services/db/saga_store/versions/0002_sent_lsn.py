"""Where in the WAL the orchestrator wrote each saga's command in flight: until the saga store's
connector slot confirms that position, the command has not been captured, and its deadline is the
pipeline's, not the participant's.

Revision ID: store0002
"""
from alembic import op

revision = "store0002"
down_revision = "store0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE saga_instances ADD COLUMN sent_lsn pg_lsn")
