"""inventory: saga participant: inbox, and stock reservations per saga.

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
    op.execute("""CREATE TABLE stock_reservations (
    saga_id    text NOT NULL,
    sku        text NOT NULL REFERENCES stock_items (sku),
    quantity   integer NOT NULL CHECK (quantity > 0),
    status     text NOT NULL CHECK (status IN ('RESERVED', 'RELEASED')),
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (saga_id, sku)
);""")
