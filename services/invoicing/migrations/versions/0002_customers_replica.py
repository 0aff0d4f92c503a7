"""invoicing: local copy of the customers it needs, replicated from orders.

Deleted customers stay, flagged: old invoices keep their names.

Only the columns of the replication spec (streams/replication.json); the soft reference
orders_customer_id is the key, with no foreign key across services. cdc_position is the
source LSN of the change that wrote the row: an apply happens only if it is newer.

Revision ID: 0002
Revises: 0001
"""
from services.cdc_tables import create_replica_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = [("legal_name", "text"), ("email", "text"), ("billing_address", "text"), ("country", "text")]
    create_replica_table("customers", ("orders_customer_id", "bigint"), columns, soft_delete=True)
