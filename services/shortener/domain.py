"""The URL-shortener example domain: the shortener service (an HTTP component with its own
database) creates short links and records every click; the analytics service holds a read model
of them (one record per link, clicks per minute/hour/day, totals, top referrers), folded by a
Faust worker from the captured changes and rebuilt exactly by replay."""
from __future__ import annotations

from pathlib import Path

from services.registry import Component, Domain, ServiceSpec
from services.shortener.analytics.clicks import CLICKS_READ_MODEL
from services.shortener.events import URL_AGGREGATE

HERE = Path(__file__).resolve().parent


def _demo(ctx) -> None:
    from services.shortener.demo import run

    run(ctx)


DOMAIN = Domain(
    name="shortener",
    description="URL shortener -> analytics: a read model folded by Faust tables from captured clicks",
    services=(
        # clicks keyed by url_id: one link's clicks on one partition, in order (the read model's counters)
        ServiceSpec("shortener", captured_tables=("clicks",), migrations=HERE / "urls" / "migrations",
                    aggregates=(URL_AGGREGATE,), event_keys={"clicks": ("url_id",)}),
        ServiceSpec("analytics", migrations=HERE / "analytics" / "migrations"),
    ),
    read_models=(CLICKS_READ_MODEL,),
    demo=_demo,
    components=(Component("shortener", "services.shortener.urls.server"),),
)
