"""invoicing: replica rows remember the commit order of the change that wrote them.

(last commit LSN, change LSN) orders streamed changes as they committed; -1 marks a snapshot
read, which only fills a missing row.

Revision ID: 0005
Revises: 0004
"""
from services.cdc_tables import add_commit_order

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_commit_order("customers_replica")
