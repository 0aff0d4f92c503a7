"""Saga throughput and latency: place-order sagas offered open-loop at rising rates, in each
mode, on the real saga workers. Per rate: achieved sagas/s, p50/p99 from order commit to the
saga's end, and a per-hop breakdown from the sagas' timelines, the Kafka record timestamps
(when Debezium captured each message) and the participants' inbox commit times, so the slowest
hop is visible. The knee is the first rate whose p99 is over twice the lowest rate's, or whose
completions fall behind the offered rate."""
from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
import psycopg
from confluent_kafka import Consumer, TopicPartition

from bench.our_worker import healthy_process
from services.ecommerce.orders.commands import OrderLine, place_order
from services.ecommerce.place_order import PLACE_ORDER
from stack.kafka_client import ADMIN, KafkaAccess, access
from streams.sagas.choreography_runtime import monitor_subscriptions
from streams.sagas.enabled import enabled
from streams.sagas.topics import commands_topic, replies_topic
from streams.sagas.worker import names

GOAL_RATE, GOAL_P99_S = 100, 3.0
PARTICIPANTS = ("payments", "inventory", "invoicing", "shipping", "orders")


@dataclass(frozen=True)
class SagaRun:
    mode: str
    rate: float                       # offered sagas/s
    placed: int
    achieved: float                   # sagas ended per second, first end to last end
    latencies_ms: tuple[float, ...]   # order commit -> saga ended
    outcomes: dict[str, int]
    hops_ms: dict[str, float] = field(default_factory=dict)   # hop -> median ms

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(q * len(xs)))]


@contextmanager
def saga_workers(env: dict[str, str], mode: str) -> Iterator[None]:
    with ExitStack() as stack:
        for name in names(mode):
            stack.enter_context(healthy_process(["saga-worker", name, "--mode", mode, "--loglevel", "warning"],
                                                {**env, "CDC_SAGA_MODE": mode}, f"bench-saga-{mode}-{name}"))
        yield


def _topics(mode: str) -> list[str]:
    if mode == "orchestration":
        return [*(commands_topic(p) for p in PARTICIPANTS), replies_topic(PLACE_ORDER.name)]
    return monitor_subscriptions(enabled())


def _ends(kafka: KafkaAccess, topics: list[str]) -> dict[tuple[str, int], int]:
    c = Consumer(kafka.config(**{"group.id": "cdc-bench-probe", "enable.auto.commit": False}))
    try:
        meta = c.list_topics(timeout=10)
        return {(t, p): c.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
                for t in topics for p in meta.topics[t].partitions}
    finally:
        c.close()


Captured = dict[tuple[str, str, int, str], float]   # (command|reply|event, saga id, step, action) -> epoch s


def _captured(kafka: KafkaAccess, start: dict[tuple[str, int], int]) -> Captured:
    """(saga id, step, action) -> when its command/reply (or its choreographed ask) was captured,
    from the record timestamps between `start` and the current ends."""
    ends = _ends(kafka, sorted({t for t, _ in start}))
    c = Consumer(kafka.config(**{"group.id": "cdc-bench-probe", "enable.auto.commit": False}))
    out: Captured = {}
    try:
        c.assign([TopicPartition(t, p, o) for (t, p), o in start.items() if ends[(t, p)] > o])
        left = {tp for tp, o in start.items() if ends[tp] > o}
        while left:
            msg = c.poll(5)
            if msg is None:
                break
            if msg.error():
                continue
            topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
            if offset >= ends[(topic, partition)] - 1:
                left.discard((topic, partition))
            body = orjson.loads(msg.value() or b"{}")
            if "saga_id" not in body:
                continue
            kind = "reply" if topic == replies_topic(PLACE_ORDER.name) else ("command" if "-commands" in topic else "event")
            out[(kind, body["saga_id"], body["step"], body["action"])] = msg.timestamp()[1] / 1000
    finally:
        c.close()
    return out


def place(env: dict[str, str], rate: float, seconds: float, tag: str) -> list[int]:
    """Open loop: order k is placed at t0 + k/rate. 80% succeed, 10% a card over its limit, 10%
    a country the carrier does not serve (compensations: 1 and 4 steps)."""
    sku = f"BENCH-{tag}"
    with psycopg.connect(env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO stock_items (sku, on_hand) VALUES (%s, 1000000000)", (sku,))
    placed: list[int] = []
    with psycopg.connect(env["ORDERS_DATABASE_URL"]) as conn:
        rich = conn.execute("INSERT INTO customers (name, email, credit_limit) VALUES ('bench', %s, 100000) RETURNING id",
                            (f"rich-{tag}@example.org",)).fetchone()
        poor = conn.execute("INSERT INTO customers (name, email, credit_limit) VALUES ('bench', %s, 5) RETURNING id",
                            (f"poor-{tag}@example.org",)).fetchone()
        assert rich and poor
        conn.commit()
        n = int(rate * seconds)
        t0 = time.monotonic()
        for k in range(n):
            time.sleep(max(0.0, t0 + k / rate - time.monotonic()))
            customer, country = (poor[0], "ES") if k % 10 == 3 else (rich[0], "AQ" if k % 10 == 7 else "ES")
            placed.append(place_order(conn, customer, [OrderLine(sku, 1, Decimal("10.00"))], country))
    return placed


def _ended(env: dict[str, str], ids: list[str]) -> dict[str, tuple[str, str, float | None]]:
    with psycopg.connect(env["ORCHESTRATOR_OBSERVER_URL"]) as conn:
        rows = conn.execute(
            "SELECT s.payload->>'order_id', s.id::text, s.state, (SELECT extract(epoch FROM max(e.at)) FROM saga_events e "
            "WHERE e.saga_id = s.id AND e.kind = 'ended') FROM saga_instances s WHERE s.payload->>'order_id' = ANY(%s)",
            (ids,)).fetchall()
    return {o: (sid, state, float(at) if at is not None else None) for o, sid, state, at in rows}


def measure(env: dict[str, str], mode: str, rate: float, seconds: float, tag: str, timeout: float = 300) -> SagaRun:
    kafka = access(env, ADMIN)
    start = _ends(kafka, _topics(mode))
    placed = [str(o) for o in place(env, rate, seconds, tag)]
    deadline = time.monotonic() + timeout
    while True:
        ended = _ended(env, placed)
        done = [o for o in placed if o in ended and ended[o][2] is not None]
        if len(done) == len(placed):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"sagas {mode} at {rate}/s: {len(done)}/{len(placed)} ended after {timeout:.0f}s")
        time.sleep(0.5)
    with psycopg.connect(env["ORDERS_OBSERVER_URL"]) as conn:
        created = {str(i): float(t) for i, t in conn.execute(
            "SELECT id, extract(epoch FROM created_at) FROM orders WHERE id::text = ANY(%s)", (placed,)).fetchall()}
    end_of = {o: float(ended[o][2] or 0.0) for o in placed}  # every one ended (waited for above)
    latencies = tuple((end_of[o] - created[o]) * 1000 for o in placed)
    ends = sorted(end_of.values())
    # completions per second between the first and the last end: the offered rate while it keeps up
    achieved = (len(ends) - 1) / max(0.001, ends[-1] - ends[0]) if len(ends) > 1 else float(len(ends))
    outcomes: dict[str, int] = defaultdict(int)
    for o in placed:
        outcomes[ended[o][1]] += 1
    hops = _hops(env, mode, [ended[o][0] for o in placed], _captured(kafka, start))
    return SagaRun(mode, rate, len(placed), achieved, latencies, dict(outcomes), hops)


def _hops(env: dict[str, str], mode: str, saga_ids: list[str], captured: Captured) -> dict[str, float]:
    """Median ms of each hop over every step of every saga:
    orchestrated: command commit -> captured -> participant commit -> reply captured -> orchestrator commit;
    choreographed: previous participant's event commit -> captured -> next participant commit."""
    with psycopg.connect(env["ORCHESTRATOR_OBSERVER_URL"]) as conn:
        rows = conn.execute("SELECT saga_id::text, kind, step, action, extract(epoch FROM at) FROM saga_events "
                            "WHERE saga_id::text = ANY(%s) AND kind IN ('sent', 'replied')", (saga_ids,)).fetchall()
    sent = {(s, st, a): float(t) for s, k, st, a, t in rows if k == "sent"}
    replied = {(s, st, a): float(t) for s, k, st, a, t in rows if k == "replied"}
    handled: dict[tuple[str, int, str], float] = {}
    for p in PARTICIPANTS:
        with psycopg.connect(env[f"{p.upper()}_OBSERVER_URL"]) as conn:
            for s, st, a, t in conn.execute("SELECT saga_id, step, action, extract(epoch FROM handled_at) FROM saga_inbox "
                                            "WHERE saga_id = ANY(%s)", (saga_ids,)).fetchall():
                handled[(s, st, a)] = float(t)
    spans: dict[str, list[float]] = defaultdict(list)
    for key, t_sent in sent.items():
        if key not in handled:
            continue
        s, st, a = key
        if mode == "orchestration":
            cmd, rep = captured.get(("command", s, st, a)), captured.get(("reply", s, st, a))
            if cmd is None or rep is None or key not in replied:
                continue
            times = (t_sent, cmd, handled[key], rep, replied[key])
            if any(b < a for a, b in zip(times, times[1:], strict=False)):
                continue  # a resend or a replay: its timestamps belong to different attempts
            spans["1 command: commit -> captured"].append(cmd - t_sent)
            spans["2 command: captured -> participant commit"].append(handled[key] - cmd)
            spans["3 reply: commit -> captured"].append(rep - handled[key])
            spans["4 reply: captured -> orchestrator commit"].append(replied[key] - rep)
        else:
            # the ask for step st travels in the event about the step before it (or after, compensating)
            asked_by = [v for (k, s2, st2, _a2), v in captured.items() if k == "event" and s2 == s
                        and abs(st2 - st) == 1 and v >= t_sent - 0.001]
            if not asked_by:
                continue
            ev = min(asked_by)
            if not t_sent <= ev <= handled[key]:
                continue  # a repeated event: its timestamps belong to different attempts
            spans["1 event: commit -> captured"].append(ev - t_sent)
            spans["2 event: captured -> next participant commit"].append(handled[key] - ev)
    return {hop: statistics.median(v) * 1000 for hop, v in sorted(spans.items()) if v}


def knee(runs: list[SagaRun]) -> float | None:
    """The first offered rate where p99 is over twice the lowest rate's, or completions fall behind."""
    by_rate = sorted(runs, key=lambda r: r.rate)
    if not by_rate:
        return None
    base = by_rate[0].pct(0.99)
    for r in by_rate:
        if r.pct(0.99) > 2 * base or r.achieved < 0.9 * r.rate:
            return r.rate
    return None


def section(runs: list[SagaRun], folder) -> tuple[str, list[str], object]:
    modes = [m for m in ("orchestration", "choreography") if any(r.mode == m for r in runs)]
    lines = ["## Sagas: throughput and latency (place order)", "",
             "Open-loop orders at each offered rate (80% succeed, 10% a card over its limit, 10% a country the "
             "carrier does not serve), all saga workers of the mode running (one process each). Latency: order "
             "commit -> the saga's end (seconds).", "",
             "| mode | offered/s | achieved/s | p50 (s) | p99 (s) | max (s) | outcomes |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for mode in modes:
        for r in sorted((r for r in runs if r.mode == mode), key=lambda r: r.rate):
            lines.append(f"| {mode} | {r.rate:g} | {r.achieved:,.1f} | {r.pct(0.5) / 1000:.2f} | {r.pct(0.99) / 1000:.2f} | "
                         f"{max(r.latencies_ms) / 1000:.2f} | "
                         + ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items())) + " |")
    lines.append("")
    for mode in modes:
        mine = [r for r in runs if r.mode == mode]
        k = knee(mine)
        at_goal = [r for r in mine if r.rate == GOAL_RATE]
        met = bool(at_goal) and at_goal[0].achieved >= 0.95 * GOAL_RATE and at_goal[0].pct(0.99) / 1000 < GOAL_P99_S
        where = f"{k:g} sagas/s" if k else "no knee within the rates tried"
        lines.append(f"- {mode}: knee at {where}; goal "
                     f">= {GOAL_RATE} sagas/s with p99 < {GOAL_P99_S:g} s: {'met' if met else 'not met'}.")
    lines += ["", "Per-hop medians (ms) at the lowest and the highest offered rate:", "",
              "| mode | offered/s | hop | median ms |", "|---|---:|---|---:|"]
    for mode in modes:
        mine = sorted((r for r in runs if r.mode == mode), key=lambda r: r.rate)
        for r in ([mine[0], mine[-1]] if len(mine) > 1 else mine):
            for hop, ms in r.hops_ms.items():
                lines.append(f"| {mode} | {r.rate:g} | {hop} | {ms:,.0f} |")
    lines += ["", "![sagas](sagas.png)", ""]
    _plot(folder, runs, modes)
    data = [{"mode": r.mode, "rate": r.rate, "placed": r.placed, "achieved": r.achieved, "p50_ms": r.pct(0.5),
             "p99_ms": r.pct(0.99), "outcomes": r.outcomes, "hops_ms": r.hops_ms} for r in runs]
    return "sagas", lines, data


def _plot(folder, runs: list[SagaRun], modes: list[str]) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for mode, color in zip(modes, ("#36c", "#c63"), strict=False):
        mine = sorted((r for r in runs if r.mode == mode), key=lambda r: r.rate)
        rates = [r.rate for r in mine]
        axes[0].plot(rates, [r.pct(0.99) / 1000 for r in mine], "o-", color=color, label=f"{mode} p99")
        axes[0].plot(rates, [r.pct(0.5) / 1000 for r in mine], "o--", color=color, alpha=0.6, label=f"{mode} p50")
        axes[1].plot(rates, [r.achieved for r in mine], "o-", color=color, label=mode)
    top = max(r.rate for r in runs)
    axes[1].plot([0, top], [0, top], color="#888", linestyle=":", label="offered")
    axes[0].set_xlabel("offered sagas/s")
    axes[0].set_ylabel("order -> saga end (s)")
    axes[0].set_yscale("log")
    axes[1].set_xlabel("offered sagas/s")
    axes[1].set_ylabel("achieved sagas/s")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "sagas.png", dpi=110)
    plt.close(fig)
