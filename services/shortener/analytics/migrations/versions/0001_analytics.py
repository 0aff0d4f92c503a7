"""analytics: one record per short link (soft reference shortener_url_id), its clicks per minute,
hour and day, its total and its referrers. Written only by the read model's worker, with
absolute values guarded by the source offset they include (never count = count + n).

Revision ID: analytics0001
"""
from alembic import op

revision = "analytics0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE links (
    shortener_url_id bigint PRIMARY KEY,   -- soft reference, no foreign key across services
    code             text NOT NULL,
    target           text NOT NULL,
    created_at       timestamptz NOT NULL,
    source_offset    bigint NOT NULL       -- offset of its UrlCreated event (outbox.event.url)
);
-- Counters: `clicks` includes every click of the link's partition up to `source_offset`
-- (shortener.public.clicks); a flush writes it only if its offset is newer.
CREATE TABLE link_totals (
    shortener_url_id bigint PRIMARY KEY,
    clicks           bigint NOT NULL,
    source_offset    bigint NOT NULL
);
CREATE TABLE link_clicks (
    shortener_url_id bigint NOT NULL,
    grain            text NOT NULL CHECK (grain IN ('minute', 'hour', 'day')),
    bucket           timestamptz NOT NULL,   -- start of the minute/hour/day, UTC
    clicks           bigint NOT NULL,
    source_offset    bigint NOT NULL,
    PRIMARY KEY (shortener_url_id, grain, bucket)
);
CREATE TABLE link_referrers (
    shortener_url_id bigint NOT NULL,
    referrer         text NOT NULL,
    clicks           bigint NOT NULL,
    source_offset    bigint NOT NULL,
    PRIMARY KEY (shortener_url_id, referrer)
);
""")
