"""The link-clicks read model: the analytics service's view of the shortener.

Sources: `outbox.event.url` (UrlCreated: the link's record, soft reference shortener_url_id) and
`shortener.public.clicks` (every click row, captured by Debezium, keyed by url_id). Counters per
link: total, per minute, per hour, per day (UTC buckets of the click's commit time) and per
referrer. When retention has deleted old clicks from their topic, a rebuild refills them from the
shortener's clicks table (a blocking snapshot: reads, op 'r', counted like clicks). A click
whose link has not arrived yet is counted all the same; the link's figures show
once its record exists. A click row that is updated or deleted is not a click: dead-lettered."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.envelope import ChangeEvent, MalformedEvent, parse_change
from schemas.outbox import parse_outbox
from services.shortener.events import URL_AGGREGATE, UrlCreated
from streams.deadletter import RawMessage
from streams.read_models.plugin import Count, Counters, Folded, ReadModel, TableBackfill

LINKS_TOPIC = f"outbox.event.{URL_AGGREGATE}"
CLICKS_TOPIC = "shortener.public.clicks"
GRAINS = {"minutes": "minute", "hours": "hour", "days": "day"}   # counter table -> grain in link_clicks
COUNTERS = ("totals", *GRAINS, "referrers")


class Click(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    url_id: int = Field(ge=1)
    clicked_at: datetime
    referrer: str = Field(min_length=1, max_length=253, pattern=r"^[^|]+$")
    agent_family: str = Field(min_length=1)


def bucket(at: datetime, grain: str) -> datetime:
    at = at.astimezone(UTC)
    if grain == "minute":
        return at.replace(second=0, microsecond=0)
    if grain == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def click_counts(click: Click) -> tuple[Count, ...]:
    link = str(click.url_id)
    return (Count("totals", link),
            *(Count(table, f"{link}|{bucket(click.clicked_at, grain).isoformat()}") for table, grain in GRAINS.items()),
            Count("referrers", f"{link}|{click.referrer}"))


def _validated(model: type[BaseModel], data: Any, what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise MalformedEvent(f"{what}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


def fold(msg: RawMessage) -> Folded:
    if msg.topic == LINKS_TOPIC:
        event = parse_outbox(msg.key, msg.value, msg.headers)
        if event.event_type != "UrlCreated":
            return Folded()
        return Folded(records=(_validated(UrlCreated, event.payload, "UrlCreated"),))
    change = parse_change(msg.key, msg.value)
    if not isinstance(change, ChangeEvent):
        return Folded()   # the tombstone after a delete: the delete itself was dead-lettered
    if change.op not in ("c", "r"):
        raise MalformedEvent(f"clicks are append-only: op {change.op!r} on a click row is not counted")
    return Folded(counts=click_counts(_validated(Click, change.row, "click")))


def _split(key: str) -> tuple[int, str]:
    link, _, rest = key.partition("|")
    return int(link), rest


UPSERT_TOTALS = """
INSERT INTO link_totals (shortener_url_id, clicks, source_offset)
SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[])
ON CONFLICT (shortener_url_id) DO UPDATE SET clicks = excluded.clicks, source_offset = excluded.source_offset
WHERE link_totals.source_offset < excluded.source_offset
"""
UPSERT_BUCKETS = """
INSERT INTO link_clicks (shortener_url_id, grain, bucket, clicks, source_offset)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::bigint[], %s::bigint[])
ON CONFLICT (shortener_url_id, grain, bucket) DO UPDATE SET clicks = excluded.clicks, source_offset = excluded.source_offset
WHERE link_clicks.source_offset < excluded.source_offset
"""
UPSERT_REFERRERS = """
INSERT INTO link_referrers (shortener_url_id, referrer, clicks, source_offset)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::bigint[])
ON CONFLICT (shortener_url_id, referrer) DO UPDATE SET clicks = excluded.clicks, source_offset = excluded.source_offset
WHERE link_referrers.source_offset < excluded.source_offset
"""
UPSERT_LINKS = """
INSERT INTO links (shortener_url_id, code, target, created_at, source_offset)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[], %s::bigint[])
ON CONFLICT (shortener_url_id) DO UPDATE SET code = excluded.code, target = excluded.target,
    created_at = excluded.created_at, source_offset = excluded.source_offset
WHERE links.source_offset < excluded.source_offset
"""
FIGURES = """
SELECT l.shortener_url_id, l.code, coalesce(t.clicks, 0) AS total,
       (SELECT max(clicks) FROM link_clicks c WHERE c.shortener_url_id = l.shortener_url_id AND grain = 'minute'),
       (SELECT count(*) FROM link_clicks c WHERE c.shortener_url_id = l.shortener_url_id AND grain = 'minute'),
       (SELECT string_agg(referrer || ' ' || clicks, ', ' ORDER BY clicks DESC, referrer) FROM
          (SELECT referrer, clicks FROM link_referrers r WHERE r.shortener_url_id = l.shortener_url_id
           ORDER BY clicks DESC, referrer LIMIT 3) top),
       l.target
FROM links l LEFT JOIN link_totals t USING (shortener_url_id)
ORDER BY total DESC, l.shortener_url_id DESC LIMIT %s
"""


def _columns(rows: list[tuple]) -> list[list]:
    return [list(col) for col in zip(*rows, strict=True)] if rows else []


class ClicksStore:
    tables: tuple[str, ...] = ("links", "link_totals", "link_clicks", "link_referrers")

    async def write(self, conn: psycopg.AsyncConnection, counters: Counters, records: list[tuple[Any, int]]) -> None:
        totals = [(int(k), c, pos) for k, (c, pos) in counters.get("totals", {}).items()]
        buckets = [(link, GRAINS[table], datetime.fromisoformat(at), c, pos)
                   for table in GRAINS for key, (c, pos) in counters.get(table, {}).items()
                   for link, at in [_split(key)]]
        referrers = [(*_split(k), c, pos) for k, (c, pos) in counters.get("referrers", {}).items()]
        newest: dict[int, tuple] = {}
        for event, pos in records:
            if event.url_id not in newest or newest[event.url_id][-1] < pos:
                newest[event.url_id] = (event.url_id, event.code, event.target, event.created_at, pos)
        async with conn.transaction():
            for sql, rows in ((UPSERT_LINKS, list(newest.values())), (UPSERT_TOTALS, totals),
                              (UPSERT_BUCKETS, buckets), (UPSERT_REFERRERS, referrers)):
                if rows:
                    await conn.execute(sql, _columns(rows))

    def figures(self, conn: psycopg.Connection, limit: int = 20) -> tuple[list[str], list[tuple]]:
        rows = conn.execute(FIGURES, (limit,)).fetchall()
        return (["url id", "code", "clicks", "busiest minute", "minutes", "top referrers", "target"], rows)


CLICKS_READ_MODEL = ReadModel(name="link-clicks", service="analytics", sources=(LINKS_TOPIC, CLICKS_TOPIC),
                              counters=COUNTERS, fold=fold, store=ClicksStore(),
                              # clicks may outlive their topic's retention: refilled from the table;
                              # the links' events are kept forever (one per link)
                              backfills={CLICKS_TOPIC: TableBackfill("shortener", "clicks", "id")})
