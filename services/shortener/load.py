"""Open-loop redirect load against the shortener: request i is sent at start + i/rate whether or
not earlier ones have answered (a closed loop would slow down with the server and hide its lag).
Links are picked with Zipf-like skew, referrers and user agents from small fixed sets. Used by
the demo, the integration tests and the bench."""
from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

REFERRERS = ("https://news.example/a", "https://www.t.example/x", "https://blog.example/p", None)
AGENTS = ("Mozilla/5.0 Firefox/121.0", "Mozilla/5.0 Chrome/120.0 Safari/537.36", "curl/8.5.0",
          "Mozilla/5.0 Version/17.1 Safari/605.1.15")


@dataclass
class LoadResult:
    offered: int = 0
    redirected: int = 0                              # answered 302
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0                             # first send to last answer
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def served_per_s(self) -> float:
        return self.redirected / self.seconds if self.seconds else 0.0


def weights(n: int, skew: float = 1.1) -> list[float]:
    """Zipf-like popularity: link k gets 1/(k+1)^skew."""
    return [1.0 / (k + 1) ** skew for k in range(n)]


async def create_links(base_url: str, targets: list[str]) -> list[dict]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        links = []
        for target in targets:
            resp = await client.post("/urls", json={"target": target})
            resp.raise_for_status()
            links.append(resp.json())
        return links


async def redirects(base_url: str, codes: list[str], rate: float, seconds: float, seed: int = 1,
                    stop: asyncio.Event | None = None) -> LoadResult:
    rng = random.Random(seed)
    picks = weights(len(codes))
    result = LoadResult()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    # no pool timeout: on a loaded machine a request waits for a connection instead of failing
    timeout = httpx.Timeout(60.0, pool=None)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits, follow_redirects=False) as client:
        in_flight = asyncio.Semaphore(64)   # httpx's pool slows down quadratically with thousands waiting on it

        async def one(code: str, referrer: str | None, agent: str) -> None:
            sent = time.monotonic()   # the intended send time: waiting for a free slot counts as latency
            headers = {"User-Agent": agent, **({"Referer": referrer} if referrer else {})}
            try:
                async with in_flight:
                    resp = await client.get(f"/{code}", headers=headers)
                result.statuses[resp.status_code] += 1
                if resp.status_code == 302:
                    result.redirected += 1
                    result.latencies_ms.append((time.monotonic() - sent) * 1000)
            except httpx.HTTPError as exc:
                result.statuses[type(exc).__name__] += 1

        start = time.monotonic()
        tasks = []
        for i in range(int(rate * seconds)):
            if stop is not None and stop.is_set():
                break
            # always yield: a loop that fell behind schedule must still let the requests run
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            code = rng.choices(codes, picks)[0]
            tasks.append(asyncio.ensure_future(one(code, rng.choice(REFERRERS), rng.choice(AGENTS))))
            result.offered += 1
        await asyncio.gather(*tasks)
        result.seconds = time.monotonic() - start
    return result
