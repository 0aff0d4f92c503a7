"""invoicing: local copy of the customers it needs, replicated from orders.

Deleted customers stay, flagged: old invoices keep their names.

Only the columns of the replication spec (streams/replication.json); the soft reference
orders_customer_id is the key, with no foreign key across services. cdc_position is the
source LSN of the change that wrote the row: an apply happens only if it is newer.

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE customers_replica (
    orders_customer_id bigint PRIMARY KEY,
    legal_name         text,
    email              text,
    billing_address    text,
    country            text,
    cdc_position       bigint NOT NULL,
    cdc_deleted        boolean NOT NULL DEFAULT false,
    cdc_source_ts      timestamptz,
    cdc_applied_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE VIEW customers AS
    SELECT orders_customer_id, legal_name, email, billing_address, country, cdc_deleted AS deleted FROM customers_replica;
""")
