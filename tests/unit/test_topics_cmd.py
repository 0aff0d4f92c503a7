"""`cdc topics read` starts each partition so that the newest messages are seen, never before the low mark."""
from __future__ import annotations

from cli.topics_cmd import _text, start_offsets


def test_start_offsets_cover_the_last_n_without_going_below_the_low_mark() -> None:
    marks = {0: (0, 10), 1: (7, 9), 2: (4, 4)}
    assert start_offsets(marks, 3) == {0: 7, 1: 7, 2: 4}


def test_keys_and_values_print_as_json_when_they_are_json() -> None:
    assert _text(b'{"id": 1}') == {"id": 1}
    assert _text(b"not json") == "not json"
    assert _text(None) is None  # a tombstone stays visible as null
