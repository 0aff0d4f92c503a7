"""orders: choreographed sagas: the watches this participant keeps on the steps it asks.

Revision ID: 0004
Revises: 0003
"""
from services.saga_tables import create_saga_watches

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_saga_watches()
