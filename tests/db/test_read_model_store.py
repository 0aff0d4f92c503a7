"""The analytics read model's SQL on a real database migrated as the analytics service's: absolute
values written only when their source offset is newer (a redelivered or older flush changes
nothing), the link's record, and the figures people read. No broker."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest

from services.shortener.analytics.clicks import CLICKS_READ_MODEL
from services.shortener.events import UrlCreated

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]
STORE = CLICKS_READ_MODEL.store
AT = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


def write(dsn: str, counters: dict, records: list | None = None) -> None:
    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await STORE.write(conn, counters, records or [])
    asyncio.run(go())


def flush(total: int, offset: int) -> dict:
    return {"totals": {"7": [total, offset]}, "minutes": {f"7|{AT.isoformat()}": [total, offset]},
            "referrers": {"7|news.example": [total, offset]}}


def rows(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return [*conn.execute("SELECT 'total', clicks, source_offset FROM link_totals"),
                *conn.execute("SELECT grain, clicks, source_offset FROM link_clicks"),
                *conn.execute("SELECT referrer, clicks, source_offset FROM link_referrers")]


def test_a_flush_writes_absolute_values_only_when_its_offset_is_newer(fresh_db):
    dsn = fresh_db("analytics")
    write(dsn, flush(3, 10))
    assert rows(dsn) == [("total", 3, 10), ("minute", 3, 10), ("news.example", 3, 10)]
    write(dsn, flush(3, 10))
    write(dsn, flush(2, 8))   # an older flush, e.g. of tables recovered short after a crash
    assert rows(dsn) == [("total", 3, 10), ("minute", 3, 10), ("news.example", 3, 10)], "never count = count + n"
    write(dsn, flush(5, 14))
    assert rows(dsn) == [("total", 5, 14), ("minute", 5, 14), ("news.example", 5, 14)]


def test_the_links_record_and_its_figures_once_it_arrives_after_its_clicks(fresh_db):
    dsn = fresh_db("analytics")
    write(dsn, flush(4, 20))
    with psycopg.connect(dsn) as conn:
        assert STORE.figures(conn, 10)[1] == [], "no record yet: its clicks are kept, not shown"
    event = UrlCreated(url_id=7, code="Ab12345", target="https://example.org/", created_at=AT)
    write(dsn, {}, [(event, 3), (event, 2)])
    with psycopg.connect(dsn) as conn:
        columns, found = STORE.figures(conn, 10)
        assert found == [(7, "Ab12345", 4, 4, 1, "news.example 4", "https://example.org/")], (columns, found)
        assert conn.execute("SELECT source_offset FROM links").fetchall() == [(3,)]
