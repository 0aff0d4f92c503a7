"""The analytics read model under an open-loop redirect load: redirects/s the shortener serves
and the lag from a click's commit in the shortener to its count in the analytics database.

The lag: while the load runs, the read model's per-link totals are sampled every 20 ms; the k-th
click of a link (by commit time) is counted once its link's total reaches k, at the first sample
that shows it. So each lag is over-stated by up to one sampling interval plus the sample's own
query. Afterwards every figure is compared with a GROUP BY over the shortener's click rows."""
from __future__ import annotations

import asyncio
import bisect
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from services.shortener.analytics.clicks import CLICKS_READ_MODEL
from services.shortener.load import LoadResult, create_links, redirects

SAMPLE_S = 0.02
COMPARE = ("SELECT url_id, g, CASE WHEN g <> 'total' THEN date_trunc(g, clicked_at AT TIME ZONE 'UTC') END, count(*) "
           "FROM clicks, "
           "unnest(ARRAY['total', 'minute', 'hour', 'day']) g WHERE url_id = ANY(%s) GROUP BY 1, 2, 3",
           "SELECT shortener_url_id, grain, bucket AT TIME ZONE 'UTC', clicks FROM link_clicks WHERE shortener_url_id "
           "= ANY(%s) UNION ALL SELECT shortener_url_id, 'total', NULL, clicks FROM link_totals WHERE "
           "shortener_url_id = ANY(%s)")


@dataclass(frozen=True)
class AnalyticsRun:
    rate: float
    seconds: float
    links: int
    load: LoadResult
    lags_ms: tuple[float, ...]
    exact: bool

    def lag(self, q: float) -> float:
        xs = sorted(self.lags_ms)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")

    def redirect_ms(self, q: float) -> float:
        xs = sorted(self.load.latencies_ms)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


class TotalsSampler:
    """Samples link_totals of some links in a thread: (epoch seconds, {url id: clicks})."""

    def __init__(self, url: str, ids: list[int]) -> None:
        self.url, self.ids = url, ids
        self.samples: list[tuple[float, dict[int, int]]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                rows = conn.execute("SELECT shortener_url_id, clicks FROM link_totals WHERE shortener_url_id = ANY(%s)",
                                    (self.ids,)).fetchall()
                self.samples.append((time.time(), dict(rows)))
                time.sleep(SAMPLE_S)


def lags(clicked: dict[int, list[float]], samples: list[tuple[float, dict[int, int]]]) -> list[float]:
    """ms from each click's commit to the first sample whose total of its link includes it."""
    found = []
    for url_id, times in clicked.items():
        seen = [s.get(url_id, 0) for _, s in samples]   # totals only grow: the first index >= k
        for k, at in enumerate(sorted(times), 1):
            i = bisect.bisect_left(seen, k)
            if i < len(samples):
                found.append((samples[i][0] - at) * 1000)
    return found


def measure(env: dict[str, str], rate: float, seconds: float, links: int, tag: str) -> AnalyticsRun:
    made = asyncio.run(create_links(env["SHORTENER_URL"], [f"https://example.org/bench/{tag}/{i}" for i in range(links)]))
    ids = [m["url_id"] for m in made]
    sampler = TotalsSampler(env["ANALYTICS_OBSERVER_URL"], ids)
    sampler.thread.start()
    try:
        result = asyncio.run(redirects(env["SHORTENER_URL"], [m["code"] for m in made], rate, seconds))
        with psycopg.connect(env["SHORTENER_OBSERVER_URL"]) as src, psycopg.connect(env["ANALYTICS_OBSERVER_URL"]) as dst:
            expected = set(src.execute(COMPARE[0], (ids,)).fetchall())
            deadline = time.monotonic() + 120
            while set(dst.execute(COMPARE[1], (ids, ids)).fetchall()) != expected and time.monotonic() < deadline:
                dst.commit()
                time.sleep(0.2)
            exact = set(dst.execute(COMPARE[1], (ids, ids)).fetchall()) == expected
            clicked: dict[int, list[float]] = defaultdict(list)
            for url_id, at in src.execute("SELECT url_id, extract(epoch FROM clicked_at)::float8 FROM clicks "
                                          "WHERE url_id = ANY(%s)", (ids,)):
                clicked[url_id].append(at)
    finally:
        sampler.stop.set()
        sampler.thread.join()
    return AnalyticsRun(rate, seconds, links, result, tuple(lags(clicked, sampler.samples)), exact)


@contextmanager
def read_model_worker(env: dict[str, str]):
    """The read model's worker: the background one of `make workers` if it runs, else one of our own."""
    from bench.our_worker import _healthy, healthy_process
    from cli.workers_cmd import _web_port
    from stack.settings import StackSettings

    if _healthy(_web_port(StackSettings.from_env(), CLICKS_READ_MODEL.worker_name)):
        yield
        return
    with healthy_process(["readmodel", "worker", CLICKS_READ_MODEL.name, "--loglevel", "warning"], env,
                         f"bench-{CLICKS_READ_MODEL.worker_name}"):
        yield


def section(runs: list[AnalyticsRun], folder: Path) -> tuple[str, list[str], object]:
    lines = ["## Analytics read model: redirects and click -> analytics lag", "",
             "Open-loop redirects over HTTP (Zipf-skewed popularity over the links), the read model's worker "
             "running. Lag: click commit in the shortener -> its count committed in the analytics database "
             f"(sampled every {SAMPLE_S * 1000:.0f} ms). Exact: every total and minute/hour/day figure equals "
             "the GROUP BY over the shortener's clicks afterwards.", "",
             "| offered/s | s | links | redirects | served/s | redirect p50 (ms) | redirect p99 (ms) | lag p50 (ms) "
             "| lag p99 (ms) | exact |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in runs:
        lines.append(f"| {r.rate:g} | {r.seconds:g} | {r.links} | {r.load.redirected:,} | {r.load.served_per_s:,.1f} | "
                     f"{r.redirect_ms(0.5):,.0f} | {r.redirect_ms(0.99):,.0f} | {r.lag(0.5):,.0f} | {r.lag(0.99):,.0f} | "
                     f"{'yes' if r.exact else 'NO'} |")
    lines.append("")
    data = [{"rate": r.rate, "seconds": r.seconds, "links": r.links, "offered": r.load.offered,
             "redirected": r.load.redirected, "served_per_s": r.load.served_per_s, "statuses": dict(r.load.statuses),
             "redirect_p50_ms": r.redirect_ms(0.5), "redirect_p99_ms": r.redirect_ms(0.99),
             "lag_p50_ms": r.lag(0.5), "lag_p99_ms": r.lag(0.99), "exact": r.exact} for r in runs]
    return "analytics", lines, data
