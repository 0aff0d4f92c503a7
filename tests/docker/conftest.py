"""Smoke tests of the compose stack (`make test-docker`): the stack is found like any other, through
`make env` of CDC_STACK_DIR, which `cdc compose up` wrote. Self-contained on purpose: the
integration tier's fixtures are not needed here."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from stack.settings import StackSettings

REPO = Path(__file__).resolve().parents[2]


def cdc(*args: str, timeout: float = 600) -> str:
    """The project CLI against the same stack; fails the test with its output if it fails."""
    res = subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, f"`cdc {' '.join(args)}` failed ({res.returncode}):\n{res.stdout[-3000:]}{res.stderr[-3000:]}"
    return res.stdout


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    settings = StackSettings.from_env()
    marker = settings.run_dir / "compose-project"
    if not marker.exists():
        pytest.fail(f"no compose stack at {settings.run_dir} (CDC_STACK_DIR={os.environ.get('CDC_STACK_DIR')}): "
                    "run `make test-docker`, or `cdc compose up` first")
    res = subprocess.run(["make", "-s", "--no-print-directory", "env"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, f"`make env` failed:\n{res.stdout}{res.stderr}"
    return dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
