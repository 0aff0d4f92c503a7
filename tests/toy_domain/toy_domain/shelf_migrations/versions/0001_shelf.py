"""toyshelf: copies on the shelf per book, and the copies handed out per saga.

Revision ID: toyshelf0001
"""
from alembic import op

revision = "toyshelf0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE copies (toybooks_book_id bigint PRIMARY KEY, available integer NOT NULL CHECK (available >= 0));
CREATE TABLE handed_out (saga_id text PRIMARY KEY, toybooks_book_id bigint NOT NULL);
""")
