"""invoicing: which source cluster each replication pair was filled from.

Positions (LSNs) are comparable only within one cluster; the worker records the source's
system identifier at the first apply and refuses changes from another (a rebuilt source).

Revision ID: 0003
Revises: 0002
"""
from services.cdc_tables import create_replication_sources

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_replication_sources()
