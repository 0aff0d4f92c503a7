"""Integration fixtures. The stack is found only through `make env` (the test stack when run by
`make test`, which sets CDC_STACK_DIR and CDC_PORT_BASE)."""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from stack.kafka_client import ADMIN, access
from tests.integration.kafka_reader import TopicReader

REPO = Path(__file__).resolve().parents[2]


def read_make_env() -> dict[str, str]:
    res = subprocess.run(["make", "-s", "--no-print-directory", "env"], cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"`make env` failed (is the stack up? run `make up deploy`):\n{res.stdout}{res.stderr}")
    env = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
    for key in ("KAFKA_BOOTSTRAP_SERVERS", "CONNECT_URL"):  # service names depend on the enabled domains
        assert key in env, f"`make env` printed no {key}: {res.stdout!r}"
    return env


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    return read_make_env()


@pytest.fixture
def unique() -> str:
    """A random tag per test: tests share one stack and never truncate tables."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def reader(stack_env: dict[str, str]):
    readers: list[TopicReader] = []

    def open_reader(*topics: str) -> TopicReader:
        r = TopicReader(access(stack_env, ADMIN), list(topics))
        readers.append(r)
        return r

    yield open_reader
    for r in readers:
        r.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Destructive tests (they stop and restart the stack) run last, one after another."""
    items.sort(key=lambda item: item.get_closest_marker("destructive") is not None)


def make(*targets: str) -> None:
    """Run a Makefile target against the same stack (CDC_STACK_DIR/CDC_PORT_BASE are inherited)."""
    res = subprocess.run(["make", "-s", "--no-print-directory", *targets], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, f"`make {' '.join(targets)}` failed:\n{res.stdout[-3000:]}{res.stderr[-3000:]}"


def cdc(*args: str) -> str:
    """Run the project CLI against the same stack; fail with its output if it fails."""
    import sys

    res = subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, f"`cdc {' '.join(args)}` failed ({res.returncode}):\n{res.stdout[-3000:]}{res.stderr[-3000:]}"
    return res.stdout
