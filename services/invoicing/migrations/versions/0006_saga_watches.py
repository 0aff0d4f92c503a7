"""invoicing: choreographed sagas: the watches this participant keeps on the steps it asks.

Revision ID: 0006
Revises: 0005
"""
from services.saga_tables import create_saga_watches

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_saga_watches()
