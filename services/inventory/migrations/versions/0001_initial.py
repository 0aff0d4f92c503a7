"""inventory: business tables, outbox, Debezium signal/heartbeat tables and the publication.

Revision ID: 0001
"""
from alembic import op

from services import catalog
from services.cdc_tables import create_cdc_tables, publish

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SERVICE = catalog.get("inventory")


def upgrade() -> None:
    op.execute("""
CREATE TABLE stock_items (
    sku      text PRIMARY KEY,
    on_hand  integer NOT NULL CHECK (on_hand >= 0),
    reserved integer NOT NULL DEFAULT 0 CHECK (reserved >= 0)
);
""")
    create_cdc_tables()
    publish(SERVICE.publication, SERVICE.captured_tables)
