"""In a replication target: every column list each pair has had (a generation), so a backfill
can fill a column added to a pair on rows written before it, and only there
(streams/generations.py). Each replica row names its generation in `cdc_generation`, added by the
replica sync at every migrate.

Revision ID: cdc0005
"""
from alembic import op

revision = "cdc0005"
down_revision = "cdc0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE cdc_replica_generations (
    pair        text NOT NULL,
    generation  integer NOT NULL,
    columns     text[] NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pair, generation)
)
""")
