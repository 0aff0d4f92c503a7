"""The README's hands-on walk works as written: after `make demo`, each shell block marked
`<!-- walkthrough expect="..." -->` runs verbatim on the stack (the test stack under `make test`) and prints
what it promises. Destructive: it stops a service database and runs every worker in the background."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from tests.docs_commands import REPO, Block, walkthrough_blocks
from tests.integration.conftest import read_make_env

# make demo brings the stack up and starts every worker before the walk: longer than one test's usual 600 s
pytestmark = [pytest.mark.integration, pytest.mark.destructive, pytest.mark.timeout(1800)]
STOPPED_DB = re.compile(r"cdc db stop (\w+)")
BLOCK_TIMEOUT = 300  # seconds; a block waits on the pipeline with deadlines of its own (`cdc observe`: 60 s)


def _run(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run in a session of its own, so a timeout ends the whole tree (make's children start workers)."""
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"`{' '.join(argv)}` still running after {timeout:.0f}s, expected it done:\n"
                             f"{(out + err)[-3000:]}") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _run_block(block: Block, env: dict[str, str]) -> str:
    res = _run(["bash", "-e", "-o", "pipefail", "-c", block.code], env, BLOCK_TIMEOUT)
    output = res.stdout + res.stderr
    where = f"README.md:{block.line}"
    assert res.returncode == 0, (f"{where}: the block exited {res.returncode}, expected 0:\n{block.code}\n"
                                 f"--- output:\n{output[-4000:]}")
    if block.expect is not None:
        assert block.expect in output, (f"{where}: expected the block to print {block.expect!r}; "
                                        f"seen:\n{output[-4000:]}")
    return output


def test_the_readme_walkthrough_runs_as_written() -> None:
    blocks = walkthrough_blocks()
    assert len(blocks) >= 4 and all(b.expect for b in blocks), f"expected marked blocks with expectations: {blocks}"
    env = {**os.environ, **read_make_env()}  # what `set -a; . <(make -s env)` of the first block leaves in the shell
    try:
        demo = _run(["make", "-s", "--no-print-directory", "demo"], env, 1200)
        assert demo.returncode == 0, f"`make demo` (the walk's start) failed:\n{(demo.stdout + demo.stderr)[-4000:]}"
        assert f"console on {env['CONSOLE_URL']}" in demo.stdout, f"`make demo` starts the console:\n{demo.stdout[-2000:]}"
        assert _console_answers(env["CONSOLE_URL"]) == 200, "the console `make demo` started answers"
        for block in blocks:
            _run_block(block, env)
    finally:
        # leave the test stack as the other tests expect it: every database up, no background workers
        for service in sorted({s for b in blocks for s in STOPPED_DB.findall(b.code)}):
            _run([sys.executable, "-m", "cli", "db", "start", service], env, 120)
        stop = _run(["make", "-s", "--no-print-directory", "workers-stop"], env, 600)
        assert stop.returncode == 0, f"`make workers-stop` failed:\n{(stop.stdout + stop.stderr)[-3000:]}"
        assert isinstance(_console_answers(env["CONSOLE_URL"]), str), "`make workers-stop` stops the console too"


def _console_answers(url: str) -> int | str:
    import httpx

    try:
        return httpx.get(f"{url}/sagas?refresh=0", timeout=30).status_code
    except httpx.HTTPError as exc:
        return f"no answer: {exc!r}"
