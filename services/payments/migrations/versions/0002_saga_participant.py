"""payments: saga participant: inbox, and charges and refunds, one payment row per saga.

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
    op.execute("""ALTER TABLE payments ADD COLUMN saga_id text UNIQUE, ADD COLUMN refunded_at timestamptz;""")
