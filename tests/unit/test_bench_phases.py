"""The later bench phases' arithmetic: latency percentiles and the goal line, memory growth,
and where the saga curve's knee is."""
from __future__ import annotations

from bench.latency import LatencyRun
from bench.latency import section as latency_section
from bench.memory import MemoryRun
from bench.sagas import SagaRun, knee


def test_latency_percentiles_and_the_goal_against_the_peer(tmp_path):
    ours = LatencyRun("ours", 1000, 990.0, tuple(float(x) for x in range(1, 101)))        # p99 = 100
    peer = LatencyRun("jdbc-sink", 1000, 995.0, tuple(float(x) * 3 for x in range(1, 101)))
    assert (ours.p50, ours.p95, ours.p99, ours.max) == (51.0, 96.0, 100.0, 100.0)
    _, lines, data = latency_section([ours, peer], tmp_path)
    text = "\n".join(lines)
    assert "| 1,000 | ours | 990 | 51 | 96 | 100 | 100 |" in text
    assert "p99 ours 100 ms, JDBC sink 300 ms" in text and "met)" in text
    slow = LatencyRun("ours", 1000, 990.0, (900.0,) * 10)
    assert "not met" in "\n".join(latency_section([slow, peer], tmp_path)[1])
    assert len(data) == 2


def test_memory_growth_is_the_slope_over_the_second_half():
    flat = MemoryRun(1_000_000, 100.0, tuple((r, 200.0 + (50.0 if r < 100_000 else 0.0)) for r in range(0, 1_000_001, 50_000)))
    assert abs(flat.growth_mb_per_100k) < 1e-9 and flat.peak_mb == 250.0 and flat.rss_at(0.5) == 200.0
    leaking = MemoryRun(1_000_000, 100.0, tuple((r, 100.0 + r / 10_000) for r in range(0, 1_000_001, 50_000)))
    assert round(leaking.growth_mb_per_100k, 6) == 10.0


def _run(rate: float, achieved: float, p99_ms: float) -> SagaRun:
    return SagaRun("orchestration", rate, 100, achieved, tuple([p99_ms / 2] * 98 + [p99_ms] * 2), {"COMPLETED": 100})


def test_the_knee_is_where_p99_doubles_or_completions_fall_behind():
    assert knee([_run(10, 10, 1000), _run(25, 25, 1200), _run(50, 49, 2500), _run(100, 60, 9000)]) == 50
    assert knee([_run(10, 10, 1000), _run(25, 20, 1100)]) == 25, "ended 20/s of 25 offered: behind"
    assert knee([_run(10, 10, 1000), _run(25, 25, 1100)]) is None
