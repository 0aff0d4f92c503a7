"""The shortener part of `make demo`: three short links created over HTTP, redirects with skewed
popularity, their UrlCreated events and click rows captured by Debezium, and the analytics read
model (folded by the `make workers` worker) checked against a GROUP BY over the shortener's clicks."""
from __future__ import annotations

import asyncio
import time

import psycopg

from cli.demo_cmd import show_captured
from cli.readmodel_cmd import figures_table
from services.registry import DemoContext
from services.shortener.analytics.clicks import CLICKS_READ_MODEL, CLICKS_TOPIC, LINKS_TOPIC
from services.shortener.load import create_links, redirects

REDIRECTS = 40
CHECK = ("SELECT url_id, count(*) FROM clicks WHERE url_id = ANY(%s) GROUP BY 1",
         "SELECT shortener_url_id, clicks FROM link_totals WHERE shortener_url_id = ANY(%s)")


def run(ctx: DemoContext) -> None:
    base = ctx.env["SHORTENER_URL"]
    made: list[dict] = []

    def write() -> int:
        made.extend(asyncio.run(create_links(base, [f"https://example.org/{ctx.tag}/{p}" for p in ("docs", "blog", "shop")])))
        result = asyncio.run(redirects(base, [m["code"] for m in made], rate=20, seconds=REDIRECTS / 20))
        ctx.out.print(f"{len(made)} links created (POST {base}/urls), {result.redirected} redirects served "
                      f"(GET {base}/<code>, skewed popularity)")
        return len(made) + result.redirected

    show_captured(ctx, [CLICKS_TOPIC], [LINKS_TOPIC], write)
    ids = [m["url_id"] for m in made]
    deadline = time.monotonic() + 90
    with ctx.out.status("waiting for the analytics read model"), \
            psycopg.connect(ctx.env["SHORTENER_OBSERVER_URL"], autocommit=True) as src, \
            psycopg.connect(ctx.env["ANALYTICS_OBSERVER_URL"], autocommit=True) as dst:
        while True:
            expected = set(src.execute(CHECK[0], (ids,)).fetchall())
            folded = set(dst.execute(CHECK[1], (ids,)).fetchall())
            if expected == folded or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    ctx.out.print(figures_table(CLICKS_READ_MODEL, ctx.env["ANALYTICS_OBSERVER_URL"], limit=10))
    if expected != folded:
        ctx.out.print(f"[red]the read model differs from the GROUP BY over the clicks: {sorted(expected)} vs "
                      f"{sorted(folded)}[/red]")
        raise SystemExit(1)
    ctx.out.print("[green]analytics equals the GROUP BY over the shortener's clicks[/green]: shortener DB -> "
                  "Debezium -> Kafka -> Faust tables -> analytics DB (`cdc observe readmodels`, "
                  "`cdc readmodel rebuild link-clicks`)")
