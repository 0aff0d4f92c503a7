"""accounts: the identity provider's id of each signed-up user, and nothing personal.

The e-mail and the name live at the provider (and in the mailer's welcome record); this
service keeps only the soft reference to the sign-up and the provider's id.

Revision ID: accounts0001
"""
from alembic import op

revision = "accounts0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE accounts (
    registration_signup_id text PRIMARY KEY,     -- soft reference, no foreign key across services
    provider_user_id       text NOT NULL UNIQUE,
    created_at             timestamptz NOT NULL DEFAULT now()
);
""")
