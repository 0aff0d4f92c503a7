"""orders: saga participant: inbox, and order outcome of its saga.

Revision ID: 0002
Revises: 0001
"""
from alembic import op

from services.saga_tables import create_saga_inbox

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_saga_inbox()
    op.execute("""ALTER TABLE orders ADD COLUMN country text NOT NULL DEFAULT 'ES', ADD COLUMN status_reason text;""")
