"""invoicing: which source cluster each replication pair was filled from.

Positions (LSNs) are comparable only within one cluster; the worker records the source's
system identifier at the first apply and refuses changes from another (a rebuilt source).

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE cdc_replication_sources (
    pair             text PRIMARY KEY,
    source_system_id text NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);
""")
