"""The bench's results page: medians, the ratio against the peer, and a wrong replica flagged."""
from bench.race import RaceResult
from bench.report import write

META = {"date": "2026-11-23 14:00 UTC", "machine": "test box", "runs": 3, "command": "make bench",
        "changes": 1000, "inserts": 500, "updates": 350, "deletes": 150, "rows": 350}


def _race(side: str, seconds: float, correct: bool = True) -> RaceResult:
    return RaceResult(side, 1000, seconds, cpu_seconds=seconds / 2, peak_rss_mb=100, correct=correct)


def test_medians_and_ratio(tmp_path):
    races = [_race("ours", 0.1), _race("jdbc-sink", 0.4), _race("ours", 0.2), _race("jdbc-sink", 0.5),
             _race("ours", 0.25), _race("jdbc-sink", 0.6)]
    text = write(tmp_path, META, [30_000, 40_000, 35_000], [10_000, 14_000, 12_000], races).read_text()
    assert "| 35,000 |" in text and "| 12,000 |" in text          # medians of the source runs
    assert "34%" in text                                           # 12,000 / 35,000
    assert "**2.50x**" in text and "not met" in text               # 5,000 / 2,000 events/s
    assert "**NO**" not in text
    assert (tmp_path / "results.json").exists()


def test_a_wrong_replica_is_flagged(tmp_path):
    races = [_race("ours", 0.1, correct=False), _race("jdbc-sink", 0.4)]
    text = write(tmp_path, META | {"runs": 1}, [1.0], [1.0], races).read_text()
    assert "identical to the source: **NO**" in text


def test_every_side_and_goal_is_in_the_table(tmp_path):
    races = [_race("ours", 0.05), _race("ours-faust-drain", 0.15), _race("jdbc-sink", 0.2)]
    text = write(tmp_path, META | {"runs": 1}, [1.0], [1.0], races).read_text()
    assert "Faust's own drain" in text and "| 20,000 |" in text and "| 6,667 |" in text
    assert "**4.00x**" in text and "goal >= 3x: met" in text
    assert "goal >= 20,000: met" in text and "3.00x events/s" in text
