"""orchestrator: a failed compensation is resent after a back-off, not at once.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE saga_instances ADD COLUMN retry_pending boolean NOT NULL DEFAULT false")
