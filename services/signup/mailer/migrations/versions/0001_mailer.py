"""mailer: one welcome record per sign-up, and the ledger of welcome e-mails handed to SMTP.

`welcome_emails` is written in the saga command's transaction (with its inbox row);
`welcome_sends` is committed on its own right after the SMTP server accepted the message, so
a redelivered command (a crash, a redone batch) finds the send and does not mail again.

Revision ID: mailer0001
"""
from alembic import op

revision = "mailer0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE welcome_emails (
    registration_signup_id text PRIMARY KEY,     -- soft reference, no foreign key across services
    email                  text NOT NULL,
    name                   text NOT NULL,
    template_id            text NOT NULL,
    message_id             text NOT NULL UNIQUE,
    created_at             timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE welcome_sends (
    message_id text PRIMARY KEY,
    sent_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
""")
