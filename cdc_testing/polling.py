"""Waiting for an observable fact with a deadline, never a fixed sleep."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(fetch: Callable[[], T], done: Callable[[T], bool], timeout: float, expected: str,
         interval: float = 0.2) -> T:
    """Call fetch() until done(value); on timeout fail saying what was expected and what was seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:.0f}s expected {expected}; last seen: {value!r}"[:4000])
        time.sleep(interval)
