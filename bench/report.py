"""The results folder: results.json (every run), results.md (medians and ratios) and PNG plots."""
from __future__ import annotations

import json
import platform
import statistics
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench.race import RaceResult


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> str:
    cores = len(__import__("os").sched_getaffinity(0))
    with open("/proc/meminfo") as fh:
        mem_gb = int(fh.readline().split()[1]) / 1024 / 1024
    return f"{platform.system()} {platform.machine()}, {cores} cores, {mem_gb:.0f} GiB, Python {platform.python_version()}"


Section = tuple[str, list[str], object]   # (json key, markdown lines, json data)


def write(folder: Path, meta: dict, ceiling: list[float], captured: list[float],
          races: list[RaceResult], extra: list[Section] | None = None) -> Path:
    """results.md with the sections of the phases that ran; `extra` adds later phases' sections."""
    folder.mkdir(parents=True, exist_ok=True)
    extra = extra or []
    (folder / "results.json").write_text(json.dumps(
        {**meta, "ceiling_changes_per_s": ceiling, "debezium_changes_per_s": captured,
         "races": [asdict(r) | {"events_per_s": r.events_per_s} for r in races],
         **{key: data for key, _, data in extra}}, indent=2))
    lines = [
        f"# Benchmark results — {meta['date']}",
        "",
        f"Machine: {meta['machine']}. Command: `{meta['command']}`. Each figure is the median of "
        f"{meta['runs']} runs, the two sides alternating (ours, peer, ours, peer, ...).",
        "",
    ]
    if ceiling:
        lines += _source_section(meta, ceiling, captured)
    if races:
        lines += _sink_section(races)
    for _, section, _ in extra:
        lines += section
    (folder / "results.md").write_text("\n".join(lines))
    if ceiling and races:
        _plot(folder, ceiling, captured, [r for r in races if r.side == "ours"],
              [r for r in races if r.side == "jdbc-sink"])
    return folder / "results.md"


def _source_section(meta: dict, ceiling: list[float], captured: list[float]) -> list[str]:
    return [
        f"Backlog: {meta['changes']:,} committed changes ({meta['inserts']:,} inserts, {meta['updates']:,} updates, "
        f"{meta['deletes']:,} deletes) on one table, {meta['rows']:,} rows at the end.",
        "",
        "## Source: PostgreSQL's own decoding vs Debezium capture",
        "",
        "| | changes/s (median) | runs |",
        "|---|---:|---|",
        f"| pgoutput decoding alone (`pg_logical_slot_get_binary_changes`) | {_median(ceiling):,.0f} | "
        f"{', '.join(f'{x:,.0f}' for x in ceiling)} |",
        f"| Debezium capture into Kafka (first to last record timestamp) | {_median(captured):,.0f} | "
        f"{', '.join(f'{x:,.0f}' for x in captured)} |",
        "",
        f"Debezium captures at **{_median(captured) / _median(ceiling):.0%}** of the source ceiling.",
        "",
    ]


SIDES = {  # race side -> its row in the table, in this order
    "ours": "ours (one Faust worker)",
    "ours-faust-drain": "ours with Faust's own drain (before the direct drain; `--compare-drain`)",
    "jdbc-sink": "Debezium JDBC sink (own Connect worker)",
}
ONE_WORKER_GOAL = 20_000   # events/s of one worker process (issue 13)


def _sink_section(races: list[RaceResult]) -> list[str]:
    by_side = {side: [r for r in races if r.side == side] for side in SIDES}
    med = {side: {k: _median([getattr(r, k) for r in rs]) for k in ("events_per_s", "cpu_per_1000", "peak_rss_mb")}
           for side, rs in by_side.items() if rs}
    ours, peer = med.get("ours"), med.get("jdbc-sink")
    ratio = ours["events_per_s"] / peer["events_per_s"] if ours and peer else float("nan")
    lines = [
        "## Sink only: the same captured topic drained into an empty replica",
        "",
        "| side | events/s | CPU-s per 1,000 events | peak RSS (MB) | replica = source | runs (events/s) |",
        "|---|---:|---:|---:|---|---|",
    ]
    for side, label in SIDES.items():
        if side in med:
            m, rs = med[side], by_side[side]
            lines.append(f"| {label} | {m['events_per_s']:,.0f} | {m['cpu_per_1000']:.3f} | {m['peak_rss_mb']:.0f} | "
                         f"{'yes' if all(r.correct for r in rs) else '**NO**'} | "
                         f"{', '.join(f'{r.events_per_s:,.0f}' for r in rs)} |")
    goals = [f"Throughput ratio ours / JDBC sink: **{ratio:.2f}x** (goal >= 3x: {'met' if ratio >= 3 else 'not met'})."]
    if ours and peer:
        less = ours["cpu_per_1000"] < peer["cpu_per_1000"]
        goals.append(f"CPU per event, ours / JDBC sink: {ours['cpu_per_1000'] / peer['cpu_per_1000']:.2f} "
                     f"(goal < 1: {'met' if less else 'not met'}).")
    if ours:
        goals.append(f"One worker: {ours['events_per_s']:,.0f} events/s (goal >= {ONE_WORKER_GOAL:,}: "
                     f"{'met' if ours['events_per_s'] >= ONE_WORKER_GOAL else 'not met'}).")
    if ours and "ours-faust-drain" in med:
        goals.append(f"Direct drain / Faust's drain: {ours['events_per_s'] / med['ours-faust-drain']['events_per_s']:.2f}x "
                     f"events/s, {ours['cpu_per_1000'] / med['ours-faust-drain']['cpu_per_1000']:.2f}x CPU per event.")
    return lines + [
        "",
        *goals,
        f"Every replica identical to the source: {'yes' if all(r.correct for r in races) else '**NO**'}.",
        "",
        "Runs in order (events/s): " + "; ".join(f"{r.side} {r.events_per_s:,.0f}" for r in races),
        "",
        "![throughput](throughput.png)",
        "",
    ]


def _plot(folder: Path, ceiling: list[float], captured: list[float], ours: list[RaceResult],
          peer: list[RaceResult]) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plots are optional: `pip install -e '.[bench]'`
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    names = ["pgoutput alone", "Debezium capture"]
    axes[0].bar(names, [_median(ceiling), _median(captured)], color=["#888", "#c33"])
    axes[0].set_title("Source: changes/s (median)")
    names = ["ours", "JDBC sink"]
    axes[1].bar(names, [_median([r.events_per_s for r in ours]), _median([r.events_per_s for r in peer])],
                color=["#36c", "#c63"])
    for i, rs in enumerate((ours, peer)):
        axes[1].scatter([i] * len(rs), [r.events_per_s for r in rs], color="black", zorder=3, s=12)
    axes[1].set_title("Sink only: events/s (median, dots = runs)")
    fig.tight_layout()
    fig.savefig(folder / "throughput.png", dpi=110)
    plt.close(fig)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
