"""payments: choreographed sagas: the watches this participant keeps on the steps it asks.

Revision ID: 0003
Revises: 0002
"""
from services.saga_tables import create_saga_watches

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_saga_watches()
