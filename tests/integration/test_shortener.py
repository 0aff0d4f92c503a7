"""The shortener -> analytics read model on the real stack: real HTTP redirects recorded in the
shortener's database, captured by Debezium, folded by the real Faust worker into the analytics
database. Every figure must equal a GROUP BY over the shortener's own click rows: after a load,
after kill -9 of the worker mid-load (its Faust tables recovered from their changelogs), after a
wipe and rebuild, after a replay from offset 0 without a wipe, and after a rebuild that refills
clicks retention deleted from their table. A malformed click is dead-lettered."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from confluent_kafka import Producer, TopicPartition

from cdc_testing.events import TopicReader
from cdc_testing.polling import poll
from cdc_testing.workers import free_port
from services.shortener.analytics.clicks import CLICKS_READ_MODEL, CLICKS_TOPIC
from services.shortener.load import create_links, redirects
from stack.kafka_client import ADMIN, access
from stack.settings import StackSettings
from streams.read_models import rebuild as rb
from tests.integration.conftest import cdc

pytestmark = pytest.mark.integration
MODEL = CLICKS_READ_MODEL
REPO = Path(__file__).resolve().parents[2]


class ReadModelWorker:
    """`cdc readmodel worker link-clicks` as a subprocess with a short session timeout."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.log = log_dir / f"readmodel-{self.port}.log"
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli", "readmodel", "worker", MODEL.name, "--web-port", str(self.port),
                 "--session-timeout", "6"], cwd=REPO, env={**os.environ, **env}, stdout=fh, stderr=subprocess.STDOUT,
                start_new_session=True)

    def wait_healthy(self, timeout: float = 240) -> None:
        def fetch():
            if self.proc.poll() is not None:
                raise AssertionError(f"read model worker exited {self.proc.returncode}:\n{self.tail()}")
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code
            except httpx.HTTPError as exc:
                return str(exc)
        poll(fetch, lambda s: s == 200, timeout, "the read model worker healthy with its partitions")

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def tail(self, lines: int = 30) -> str:
        kept = [line for line in self.log.read_text(errors="replace").splitlines() if "producer buffer full" not in line]
        return "\n".join(kept[-lines:])


@pytest.fixture
def worker(stack_env, tmp_path):
    assert "SHORTENER_URL" in stack_env, "`make env` has no SHORTENER_URL: is the shortener domain enabled and up?"
    started: list[ReadModelWorker] = []

    def start() -> ReadModelWorker:
        w = ReadModelWorker(stack_env, tmp_path)
        started.append(w)
        w.wait_healthy()
        return w

    yield start
    for w in started:
        w.stop()


def links(env, n: int, tag: str) -> list[dict]:
    return asyncio.run(create_links(env["SHORTENER_URL"], [f"https://example.org/{tag}/{i}" for i in range(n)]))


def load(env, codes: list[str], rate: float, seconds: float, seed: int = 1):
    result = asyncio.run(redirects(env["SHORTENER_URL"], codes, rate, seconds, seed))
    assert result.redirected == result.offered, f"every redirect answered 302: {result.statuses}"
    return result


GROUP_BY = {
    "totals": ("SELECT url_id, count(*) FROM clicks WHERE url_id = ANY(%s) GROUP BY 1",
               "SELECT shortener_url_id, clicks FROM link_totals WHERE shortener_url_id = ANY(%s)"),
    "buckets": ("SELECT url_id, g, date_trunc(g, clicked_at AT TIME ZONE 'UTC'), count(*) FROM clicks, "
                "unnest(ARRAY['minute', 'hour', 'day']) g WHERE url_id = ANY(%s) GROUP BY 1, 2, 3",
                "SELECT shortener_url_id, grain, bucket AT TIME ZONE 'UTC', clicks FROM link_clicks "
                "WHERE shortener_url_id = ANY(%s)"),
    "referrers": ("SELECT url_id, referrer, count(*) FROM clicks WHERE url_id = ANY(%s) GROUP BY 1, 2",
                  "SELECT shortener_url_id, referrer, clicks FROM link_referrers WHERE shortener_url_id = ANY(%s)"),
}


def figures(env, ids: list[int]) -> dict[str, tuple[set, set]]:
    """figure -> (GROUP BY over the shortener's click rows, the analytics read model)."""
    found = {}
    with psycopg.connect(env["SHORTENER_OBSERVER_URL"]) as src, psycopg.connect(env["ANALYTICS_OBSERVER_URL"]) as dst:
        for name, (source_sql, model_sql) in GROUP_BY.items():
            found[name] = (set(src.execute(source_sql, (ids,)).fetchall()), set(dst.execute(model_sql, (ids,)).fetchall()))
    return found


def assert_exact(env, ids: list[int], timeout: float = 240) -> dict:
    def differences():
        return {k: {"group by only": sorted(a - b)[:5], "read model only": sorted(b - a)[:5]}
                for k, (a, b) in figures(env, ids).items() if a != b}
    poll(differences, lambda d: not d, timeout, "every analytics figure equal to the GROUP BY over the clicks")
    return figures(env, ids)


def total(env, ids: list[int]) -> int:
    with psycopg.connect(env["ANALYTICS_OBSERVER_URL"]) as conn:
        row = conn.execute("SELECT coalesce(sum(clicks), 0) FROM link_totals WHERE shortener_url_id = ANY(%s)",
                           (ids,)).fetchone()
    return int(row[0]) if row else 0


def test_clicks_over_http_equal_the_group_by_and_a_malformed_click_is_dead_lettered(stack_env, worker, unique):
    worker()
    made = links(stack_env, 4, unique)
    ids = [m["url_id"] for m in made]
    dlq = TopicReader(access(stack_env, ADMIN), [MODEL.dead_letter_topic])
    try:
        key = orjson.dumps({"url_id": ids[0]})   # the link's partition: the clicks after it must still count
        producer = Producer(access(stack_env, ADMIN).config(**{"partitioner": "murmur2_random"}))
        producer.produce(CLICKS_TOPIC, key=key, value=b'{"op": "c", "after": {"url_id": "not a click"}}')
        assert producer.flush(10) == 0
        load(stack_env, [m["code"] for m in made], rate=50, seconds=4)
        letters = dlq.wait_for(lambda m: m.key() == key, 1, 60, f"the malformed click on {MODEL.dead_letter_topic}")
        reason = dict(letters[0].headers())["dlq.reason"].decode()
        assert reason.startswith("malformed: not a Debezium change event"), reason
    finally:
        dlq.close()
    exact = assert_exact(stack_env, ids)
    assert sum(n for _, n in exact["totals"][0]) == 200
    with psycopg.connect(stack_env["ANALYTICS_OBSERVER_URL"]) as conn:
        recorded = conn.execute("SELECT shortener_url_id, code FROM links WHERE shortener_url_id = ANY(%s)",
                                (ids,)).fetchall()
    assert sorted(recorded) == sorted((m["url_id"], m["code"]) for m in made), "one record per link"


def test_kill_9_of_the_worker_mid_load_then_a_restart_is_exact(stack_env, worker, unique):
    w = worker()
    made = links(stack_env, 5, unique)
    ids = [m["url_id"] for m in made]
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(r=load(stack_env, [m["code"] for m in made], 30, 12)))
    thread.start()
    try:
        poll(lambda: total(stack_env, ids), lambda n: n >= 40, 90, "the worker folding the load's first clicks")
        w.kill9()
        at_kill = total(stack_env, ids)
        w = worker()
    finally:
        thread.join()
    assert at_kill < 360, f"the kill came after the load ({at_kill} clicks folded): not mid-load"
    exact = assert_exact(stack_env, ids)
    assert sum(n for _, n in exact["totals"][0]) == result["r"].offered == 360
    # The restart recovered its tables with a backlog waiting: Faust could lose a message in that
    # window and then never commit past it (streams/commit_bookkeeping.py). Its commits must end too.
    kafka = access(stack_env, ADMIN)
    poll(lambda: rb.behind(kafka, MODEL, rb.end_offsets(kafka, MODEL)), lambda n: n == 0, 60,
         "the restarted worker committed every source to its end (messages not committed)")


@pytest.mark.timeout(1800)   # two full replays of the sources, on a shared machine
def test_wipe_and_rebuild_gives_identical_figures_and_a_replay_without_wipe_changes_nothing(stack_env, worker, unique):
    w = worker()
    made = links(stack_env, 3, unique)
    ids = [m["url_id"] for m in made]
    load(stack_env, [m["code"] for m in made], rate=50, seconds=3)
    before_ids = assert_exact(stack_env, ids)
    kafka = access(stack_env, ADMIN)
    poll(lambda: rb.behind(kafka, MODEL, rb.end_offsets(kafka, MODEL)), lambda n: n == 0, 60,
         "the worker caught up on every source (committed)")
    before = rb.digest(stack_env["ANALYTICS_OBSERVER_URL"], MODEL)
    w.stop()
    settings = StackSettings.from_env()
    try:
        printed = cdc("readmodel", "rebuild", MODEL.name, "--timeout", "300")   # starts the background worker
        after = rb.digest(stack_env["ANALYTICS_OBSERVER_URL"], MODEL)
        with psycopg.connect(stack_env["SHORTENER_OBSERVER_URL"]) as conn:
            every = [i for (i,) in conn.execute("SELECT id FROM urls")]
        assert_exact(stack_env, every, timeout=1)   # every link, not only this test's: the whole model
        assert after == before, f"rebuilt tables differ:\n{printed}"
        assert "identical" in printed and "changed" not in printed, printed
        assert figures(stack_env, ids) == before_ids

        # replay from offset 0 without a wipe: the tables come back from their changelogs and the
        # database's guard refuses every older position
        from cli.workers_cmd import stop_one

        assert stop_one(settings, MODEL.worker_name), "the rebuild left its worker running"
        rb.reset_offsets(kafka, MODEL)
        assert rb.behind(kafka, MODEL, rb.end_offsets(kafka, MODEL)) > 0, "the group is back at offset 0"
        replay = worker()

        def behind() -> int:
            assert replay.proc.poll() is None, f"the worker exited {replay.proc.returncode}:\n{replay.tail(80)}"
            return rb.behind(kafka, MODEL, rb.end_offsets(kafka, MODEL))
        try:
            poll(behind, lambda n: n == 0, 300, "the replay from offset 0 caught up")
        except AssertionError as exc:   # a CI run stayed 5 behind: say what the worker did
            raise AssertionError(f"{exc}\nthe worker's log ends:\n{replay.tail(80)}") from None
        assert rb.digest(stack_env["ANALYTICS_OBSERVER_URL"], MODEL) == before, "the replay changed the read model"
    finally:
        from cli.workers_cmd import stop_one

        stop_one(settings, MODEL.worker_name)


@pytest.mark.timeout(600)
def test_a_rebuild_after_retention_deleted_the_clicks_refills_them_from_the_table_under_load(stack_env, worker, unique):
    """Last in this module: it deletes the clicks topic's history (as retention would), so later
    rebuilds here take this path too. Clicks keep arriving while the rebuild cuts the table and
    Debezium snapshots it: each must count once, from the snapshot or from the stream, and every
    click must come back (an incremental snapshot kept one click per link of each chunk)."""
    from confluent_kafka.admin import AdminClient

    from cli.workers_cmd import stop_one

    w = worker()
    made = links(stack_env, 3, unique)
    codes = [m["code"] for m in made]
    load(stack_env, codes, rate=50, seconds=3)
    kafka = access(stack_env, ADMIN)
    poll(lambda: rb.behind(kafka, MODEL, rb.end_offsets(kafka, MODEL)), lambda n: n == 0, 120,
         "the worker caught up on every source (committed)")
    w.stop()
    ends = rb.end_offsets(kafka, MODEL, [CLICKS_TOPIC])
    admin = AdminClient(kafka.config())
    for fut in admin.delete_records([TopicPartition(t, p, o) for (t, p), o in ends.items() if o > 0],
                                    request_timeout=30).values():
        fut.result(timeout=60)
    assert rb.plan(kafka, MODEL) == [CLICKS_TOPIC], "the clicks topic's start is gone: the rebuild must refill it"

    result: dict = {}
    during = threading.Thread(target=lambda: result.update(r=load(stack_env, codes, rate=20, seconds=20, seed=3)))
    settings = StackSettings.from_env()
    try:
        during.start()
        printed = cdc("readmodel", "rebuild", MODEL.name, "--timeout", "300")
        during.join()
        assert "refilled from shortener.clicks" in printed, printed
        with psycopg.connect(stack_env["SHORTENER_OBSERVER_URL"]) as conn:
            every = [i for (i,) in conn.execute("SELECT id FROM urls")]
        exact = assert_exact(stack_env, every, timeout=300)   # every link: the whole model, refilled
        ours = {u: n for u, n in exact["totals"][0] if u in {m["url_id"] for m in made}}
        assert sum(ours.values()) == 150 + result["r"].offered, (ours, result["r"].offered)
    finally:
        during.join()
        stop_one(settings, MODEL.worker_name)
