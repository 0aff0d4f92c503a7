"""Integration fixtures: the pytest plugin's (cdc_testing.plugin, the same a user's own service
tests get), under the names these tests use. The stack is found only through `make env` (the
ini option cdc_env_command): the test stack when run by `make test`, which sets CDC_STACK_DIR
and CDC_PORT_BASE, else the dev stack."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

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
def stack_env(cdc_env: dict[str, str]) -> dict[str, str]:
    return cdc_env


@pytest.fixture
def unique(cdc_unique: str) -> str:
    """A random tag per test: tests share one stack and never truncate tables."""
    return cdc_unique


@pytest.fixture
def reader(cdc_events):
    return cdc_events


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
