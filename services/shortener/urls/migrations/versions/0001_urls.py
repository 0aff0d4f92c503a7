"""shortener: the short links and every click on them.

Clicks are captured and keyed by url_id (ServiceSpec.event_keys), so one link's clicks reach the
analytics read model on one partition, in commit order.

Revision ID: shortener0001
"""
from alembic import op

revision = "shortener0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE urls (
    id         bigserial PRIMARY KEY,
    code       text NOT NULL UNIQUE,
    target     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE clicks (
    id           bigserial PRIMARY KEY,
    url_id       bigint NOT NULL REFERENCES urls (id),   -- same service: a real foreign key
    clicked_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    referrer     text NOT NULL,      -- the Referer's host, or '(direct)'
    agent_family text NOT NULL       -- Firefox, Chrome, Safari, Edge, curl, bot, other
);
CREATE INDEX clicks_url_id ON clicks (url_id);
-- the events are keyed by url_id, not the primary key: a delete's before-image must carry it
ALTER TABLE clicks REPLICA IDENTITY FULL;
""")
