"""inventory: stock, and the reservations each saga made.

The framework's tables (outbox, Debezium's signal and heartbeat, saga inbox and watches) and the
replica tables come from the framework (services/db); this chain holds only the service's own.

Revision ID: inventory0001
"""
from alembic import op

revision = "inventory0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE stock_items (
    sku      text PRIMARY KEY,
    on_hand  integer NOT NULL CHECK (on_hand >= 0),
    reserved integer NOT NULL DEFAULT 0 CHECK (reserved >= 0)
);
CREATE TABLE stock_reservations (
    saga_id    text NOT NULL,
    sku        text NOT NULL REFERENCES stock_items (sku),
    quantity   integer NOT NULL CHECK (quantity > 0),
    status     text NOT NULL CHECK (status IN ('RESERVED', 'RELEASED')),
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (saga_id, sku)
);
""")
