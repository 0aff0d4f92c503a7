"""Where a read model rebuilt from a backfill cut its source: rows whose key is at most `cut` are
folded from the snapshot's reads, rows above it from the stream's inserts, so each row counts once
although both may carry it. Kept in the read model's own database, beside its figures, because
every later fold of that source (a restart, a redelivery) must apply the same cut.

Revision ID: cdc0004
"""
from alembic import op

revision = "cdc0004"
down_revision = "cdc0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE cdc_read_model_cuts (
    model      text NOT NULL,
    topic      text NOT NULL,
    key_column text NOT NULL,
    cut        bigint NOT NULL,
    rows       bigint NOT NULL,          -- rows at or below the cut: the snapshot reads to wait for
    cut_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, topic)
)
""")
