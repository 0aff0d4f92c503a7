"""orders: full row images for the replicated customers table.

With the default replica identity, an UPDATE that leaves a large (TOASTed) column unchanged
sends Debezium's "unavailable value" placeholder instead of it, which a replica would store.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE customers REPLICA IDENTITY FULL")
