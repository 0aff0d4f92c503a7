"""The link-clicks read model without a broker: the fold of captured clicks and UrlCreated events,
counting at most once per source position, and a batch loop whose absolute, position-guarded
writes (emulated here) equal a GROUP BY over the clicks, however often a batch is redelivered."""
from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.envelope import MalformedEvent
from services.shortener.analytics.clicks import CLICKS_READ_MODEL, CLICKS_TOPIC, LINKS_TOPIC, bucket, fold
from services.shortener.events import UrlCreated
from streams.deadletter import RawMessage
from streams.read_models import counters
from streams.read_models.batch import ReadModelBatch
from streams.read_models.cuts import Cut, admit
from streams.read_models.plugin import Count

T0 = datetime(2026, 11, 29, 23, 58, 30, 123456, tzinfo=UTC)


def click_msg(offset: int, url_id: int, at: datetime, referrer: str = "(direct)", op: str = "c",
              partition: int = 0, **override) -> RawMessage:
    row = {"id": offset + 1000, "url_id": url_id, "clicked_at": at.isoformat().replace("+00:00", "Z"),
           "referrer": referrer, "agent_family": "Firefox", **override}
    value = {"before": row if op == "d" else None, "after": None if op == "d" else row, "op": op,
             "source": {"connector": "postgresql", "name": "shortener", "db": "shortener", "schema": "public",
                        "table": "clicks", "lsn": 100 + offset, "ts_ms": 1}}
    return RawMessage(CLICKS_TOPIC, partition, offset, orjson.dumps({"url_id": url_id}), orjson.dumps(value))


def link_msg(offset: int, url_id: int, code: str = "abcdefg") -> RawMessage:
    payload = {"url_id": url_id, "code": code, "target": "https://example.org/x", "created_at": T0.isoformat()}
    return RawMessage(LINKS_TOPIC, 0, offset, orjson.dumps(str(url_id)), orjson.dumps(payload),
                      (("id", b"e1"), ("eventType", b"UrlCreated")))


def test_a_click_counts_its_total_its_minute_hour_day_and_referrer():
    folded = fold(click_msg(5, 42, T0, "news.example"))
    assert folded.records == ()
    assert folded.counts == (Count("totals", "42"), Count("minutes", "42|2026-11-29T23:58:00+00:00"),
                             Count("hours", "42|2026-11-29T23:00:00+00:00"), Count("days", "42|2026-11-29T00:00:00+00:00"),
                             Count("referrers", "42|news.example"))


def test_buckets_are_utc_whatever_the_offset_of_the_timestamp():
    at = datetime(2026, 11, 30, 1, 15, tzinfo=UTC) + timedelta(hours=0)
    local = at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Madrid"))
    assert bucket(local, "day") == datetime(2026, 11, 30, tzinfo=UTC)
    assert bucket(local, "hour") == datetime(2026, 11, 30, 1, tzinfo=UTC)


def test_a_url_created_event_is_the_links_record():
    folded = fold(link_msg(3, 42, "Zx81abc"))
    assert folded.counts == () and folded.records == (UrlCreated(url_id=42, code="Zx81abc",
                                                                 target="https://example.org/x", created_at=T0),)


@pytest.mark.parametrize("msg, reason", [
    (RawMessage(CLICKS_TOPIC, 0, 1, b'{"url_id": 1}', b"{not json"), "not JSON"),
    (click_msg(1, 42, T0, agent_family=None), "click: agent_family"),
    (click_msg(1, 42, T0, clicked_at=None), "click: clicked_at"),
    (click_msg(1, 42, T0, op="u"), "append-only"),
    (click_msg(1, 42, T0, op="d"), "append-only"),
    (RawMessage(LINKS_TOPIC, 0, 1, b'"1"', b'{"url_id": 1}', (("id", b"e"), ("eventType", b"UrlCreated"))), "UrlCreated"),
])
def test_a_malformed_message_says_why(msg, reason):
    with pytest.raises(MalformedEvent, match=reason):
        fold(msg)


def test_a_tombstone_counts_nothing():
    assert fold(RawMessage(CLICKS_TOPIC, 0, 1, b'{"url_id": 1}', None)).counts == ()


def test_a_counter_counts_a_position_once():
    tables: dict = {"totals": {}}
    touched: counters.Touched = {}
    assert counters.apply(tables, [Count("totals", "1")], 7, touched) == 1
    assert counters.apply(tables, [Count("totals", "1")], 7, touched) == 0, "redelivered: not counted again"
    assert counters.apply(tables, [Count("totals", "1")], 3, touched) == 0, "older: not counted"
    assert counters.apply(tables, [Count("totals", "1")], 8, touched) == 1
    assert counters.snapshot(tables, touched) == {"totals": {"1": [2, 8]}}


class GuardedStore:
    """What the SQL does: absolute values, written only when their position is newer."""
    tables = CLICKS_READ_MODEL.store.tables

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], list[int]] = {}
        self.links: dict[int, tuple] = {}
        self.writes = 0

    async def write(self, conn, values, records) -> None:
        self.writes += 1
        for table, keys in values.items():
            for key, (count, pos) in keys.items():
                if self.rows.get((table, key), [0, -1])[1] < pos:
                    self.rows[(table, key)] = [count, pos]
        for event, pos in records:
            if self.links.get(event.url_id, (None, -1))[1] < pos:
                self.links[event.url_id] = (event.code, pos)

    def counts(self) -> dict[tuple[str, str], int]:
        return {k: v[0] for k, v in self.rows.items()}


class FakeDatabase:
    async def get(self):
        return None


class Letters:
    def __init__(self) -> None:
        self.sent: list = []

    async def publish(self, letters) -> None:
        self.sent += letters


def group_by(clicks: list[tuple[int, datetime, str]]) -> dict[tuple[str, str], int]:
    """The GROUP BYs over the shortener's click rows, as the read model's keys."""
    found: Counter = Counter()
    for url_id, at, ref in clicks:
        found[("totals", str(url_id))] += 1
        for table, grain in (("minutes", "minute"), ("hours", "hour"), ("days", "day")):
            found[(table, f"{url_id}|{bucket(at, grain).isoformat()}")] += 1
        found[("referrers", f"{url_id}|{ref}")] += 1
    return dict(found)


def run_batches(store, tables, messages, sizes, source_cuts: dict | None = None) -> Letters:
    letters = Letters()
    batch = ReadModelBatch(replace(CLICKS_READ_MODEL, store=store), tables, FakeDatabase(), letters,  # type: ignore[arg-type]
                           source_cuts=source_cuts or {})
    i = 0
    while i < len(messages):
        n = sizes()
        asyncio.run(batch.process(messages[i:i + n]))
        i += n
    return letters


def test_figures_equal_the_group_by_through_redeliveries_clicks_before_their_link_and_a_malformed_click():
    rng = random.Random(7)
    clicks = [(rng.choice([1, 1, 1, 2, 3]), T0 + timedelta(seconds=rng.randint(0, 7200)),
               rng.choice(["(direct)", "news.example", "t.co"])) for _ in range(500)]
    messages = [click_msg(i, u, at, ref) for i, (u, at, ref) in enumerate(clicks)]
    bad = RawMessage(CLICKS_TOPIC, 0, len(messages), b'{"url_id": 1}', b"garbage")
    messages += [bad, link_msg(0, 1), link_msg(1, 2)]   # the links arrive after their clicks
    store, tables = GuardedStore(), {name: {} for name in CLICKS_READ_MODEL.counters}
    letters = run_batches(store, tables, messages, lambda: rng.randint(1, 40))
    assert store.counts() == group_by(clicks)
    assert sorted(store.links) == [1, 2], "the links' records, their clicks counted before they arrived"
    assert [(d.message.offset, d.reason.split(":")[0]) for d in letters.sent] == [(bad.offset, "malformed")]

    # a kill -9 after the tables' changelog took a batch but before its offsets were committed:
    # the recovered tables see the same messages again (here: everything, from offset 0)
    before = dict(store.counts())
    run_batches(store, tables, messages, lambda: rng.randint(1, 40))
    assert store.counts() == before, "a replay changes nothing"

    # a crash before the changelog took the last batches: the tables come back short, the replay fills them
    short = {name: {} for name in CLICKS_READ_MODEL.counters}
    run_batches(GuardedStore(), short, messages[:300], lambda: 50)
    run_batches(store, short, messages, lambda: rng.randint(1, 40))
    assert store.counts() == before, "the database's guard keeps the newer absolute values"
    assert {k: v for k, v in counters.snapshot(short, {t: set(short[t]) for t in short}).items()} == \
           {k: v for k, v in counters.snapshot(tables, {t: set(tables[t]) for t in tables}).items()}


class RecordingTable(dict):
    """Counts writes, as each write of a Faust table is a changelog record."""
    writes = 0

    def __setitem__(self, key, value) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def test_a_redelivered_click_writes_its_counter_again_so_a_value_ahead_of_its_changelog_becomes_durable():
    table = RecordingTable()
    counters.apply({"totals": table}, [Count("totals", "1")], 7, {})
    counters.apply({"totals": table}, [Count("totals", "1")], 7, {})
    assert (table.writes, table["1"]) == (2, [1, 7])


def test_a_backfill_counts_each_click_once_though_the_snapshot_and_the_stream_both_carry_it():
    """After a rebuild from a backfill the topic holds, from its old end on: inserts of rows up to
    the cut that Debezium streamed late (already in the snapshot), the snapshot's reads of every row
    up to the cut, and inserts above it, interleaved. Each click counts once; without the cut, the
    late inserts count twice."""
    rng = random.Random(11)
    rows = [(i, rng.choice([1, 2]), T0 + timedelta(seconds=i), "t.co") for i in range(1, 301)]
    cut_at = 200                                   # rows 1..200 existed when the rebuild cut the table
    late_inserts = [r for r in rows if 180 < r[0] <= cut_at]   # committed before the cut, streamed after E
    reads = [r for r in rows if r[0] <= cut_at]
    new_inserts = [r for r in rows if r[0] > cut_at]
    stream = [("c", r) for r in late_inserts] + [("r", r) for r in reads[:100]] + [("c", r) for r in new_inserts[:50]] \
        + [("r", r) for r in reads[100:]] + [("c", r) for r in new_inserts[50:]]
    messages = [click_msg(i, u, at, ref, op=op, id=row_id) for i, (op, (row_id, u, at, ref)) in enumerate(stream)]
    expected = group_by([(u, at, ref) for _, u, at, ref in rows])

    store, tables = GuardedStore(), {name: {} for name in CLICKS_READ_MODEL.counters}
    run_batches(store, tables, messages, lambda: rng.randint(1, 30), {CLICKS_TOPIC: Cut(CLICKS_TOPIC, "id", cut_at)})
    assert store.counts() == expected

    store, tables = GuardedStore(), {name: {} for name in CLICKS_READ_MODEL.counters}
    run_batches(store, tables, messages, lambda: rng.randint(1, 30))
    assert store.counts() != expected, "without the cut the late inserts count twice: the test would prove nothing"


@pytest.mark.parametrize(("op", "key", "admitted"), [
    ("r", 5, True), ("r", 10, True), ("r", 11, False),      # the snapshot's reads up to the cut
    ("c", 10, False), ("c", 11, True),                      # the stream's inserts above it
    ("u", 3, True), ("d", 30, True),                        # updates and deletes: the fold decides
    ("c", "x", True), ("r", None, True),                    # not a key the cut knows: the fold judges it
])
def test_the_cut_admits_one_copy_of_each_row(op, key, admitted):
    assert admit(op, {"id": key}, Cut("t", "id", 10)) is admitted
