"""Integration fixtures: the pytest plugin's (cdc_testing.plugin, the same a user's own service
tests get), under the names these tests use. The stack is found only through `make env` (the
ini option cdc_env_command): the test stack when run by `make test`, which sets CDC_STACK_DIR
and CDC_PORT_BASE, else the dev stack."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cdc_testing.polling import poll
from cdc_testing.ports import free_port

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


# The web console and a headless Chromium, for the browser tests (test_console.py, test_saga_takeover.py)
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def console(stack_env, tmp_path_factory):
    assert "CONSOLE_TOKEN" in stack_env, f"`make env` prints no CONSOLE_TOKEN (run `make up`): {sorted(stack_env)}"
    port = free_port()
    log = tmp_path_factory.mktemp("console") / "console.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "cli", "console", "--port", str(port)], cwd=REPO,
                                env={**os.environ, **stack_env}, stdout=fh, stderr=subprocess.STDOUT)

    def answers() -> int | str:
        if proc.poll() is not None:
            raise AssertionError(f"the console exited {proc.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/sagas", timeout=10).status_code
        except httpx.HTTPError as exc:
            return str(exc)
    poll(answers, lambda s: s == 200, 90, "the console answering on /sagas")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM and DRIVER, "headless Chromium and its driver are needed: apt-get install chromium chromium-driver"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()
