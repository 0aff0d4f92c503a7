"""payments: the refund limit is the service's data, not a constant, so an operator can raise it
(then retry the sagas whose refunds it refused: `cdc saga retry`). Not captured: it stays here.

Revision ID: payments0002
"""
from alembic import op

revision = "payments0002"
down_revision = "payments0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE payment_limits (
    name   text PRIMARY KEY,
    amount numeric(12, 2) NOT NULL
);
INSERT INTO payment_limits (name, amount) VALUES ('refund', 10000.00);
""")


def downgrade() -> None:
    op.execute("DROP TABLE payment_limits")
