"""invoicing: saga participant: inbox, and one invoice per saga.

Revision ID: 0004
Revises: 0003
"""
from alembic import op

from services.saga_tables import create_saga_inbox

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_saga_inbox()
    op.execute("""ALTER TABLE invoices ADD COLUMN saga_id text UNIQUE,
    ADD COLUMN changed_at timestamptz NOT NULL DEFAULT clock_timestamp();""")
