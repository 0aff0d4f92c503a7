"""The pytest plugin (entry point `pytest11: cdc`): fixtures to test your own services against
the real pipeline. Installed with the package, so `pip install` makes them available in any repository.

    cdc_stack    the stack (session): own run folder and port base, started once, reused when up
    cdc_env      its addresses, as `cdc env` prints them
    cdc_workers  start replication and saga workers; stopped after the test
    cdc_faults   kill -9, pause or stop a named part of the stack or a worker; healed after the test
    cdc_events   read the events a change produced, from a topic's current end
    cdc_unique   a random tag, because tests share one stack and never truncate tables

Where the stack lives: --cdc-stack-dir / --cdc-port-base, else CDC_STACK_DIR / CDC_PORT_BASE,
else the ini options cdc_stack_dir / cdc_port_base, else <rootdir>/.cdc-stack on port base 30400."""
from __future__ import annotations

import os
import shlex
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdc_testing.stack import TestStack

DEFAULT_PORT_BASE = 30400  # clear of the dev (15400) and test (25400) stacks of this project's Makefile


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cdc", "the CDC pipeline's stack for service tests")
    group.addoption("--cdc-stack-dir", help="run folder of the test stack (default: CDC_STACK_DIR, ini cdc_stack_dir, "
                    "<rootdir>/.cdc-stack)")
    group.addoption("--cdc-port-base", type=int, help="first port of the test stack (default: CDC_PORT_BASE, "
                    f"ini cdc_port_base, {DEFAULT_PORT_BASE})")
    group.addoption("--cdc-no-start", action="store_true", help="fail instead of starting a stack that is not up")
    parser.addini("cdc_stack_dir", "run folder of the test stack, relative to the rootdir")
    parser.addini("cdc_port_base", "first port of the test stack")
    parser.addini("cdc_env_command", "command printing the stack's KEY=value lines (default: python -m cli env)")
    parser.addini("cdc_domains", "CDC_DOMAINS for the stack and workers (default: the environment's)")


def _stack_of(config: pytest.Config) -> TestStack:
    ini_dir = config.getini("cdc_stack_dir")
    stack_dir = (config.getoption("cdc_stack_dir") or os.environ.get("CDC_STACK_DIR")
                 or (config.rootpath / ini_dir if ini_dir else config.rootpath / ".cdc-stack"))
    port_base = (config.getoption("cdc_port_base") or os.environ.get("CDC_PORT_BASE")
                 or config.getini("cdc_port_base") or DEFAULT_PORT_BASE)
    stack = TestStack(Path(stack_dir).resolve(), int(port_base), cwd=config.rootpath)
    if command := config.getini("cdc_env_command"):
        stack.env_command = shlex.split(command)
    if domains := config.getini("cdc_domains"):
        stack.extra_env["CDC_DOMAINS"] = domains
    return stack


@pytest.fixture(scope="session")
def cdc_stack(pytestconfig: pytest.Config) -> TestStack:
    """The stack, up and with its connectors deployed (started here when it was not running)."""
    stack = _stack_of(pytestconfig)
    if pytestconfig.getoption("cdc_no_start"):
        if not stack.is_up():
            pytest.fail(f"the stack in {stack.stack_dir} (port base {stack.port_base}) is not up; "
                        "start it (`cdc up && cdc deploy`) or drop --cdc-no-start")
    else:
        stack.ensure_up()
    return stack


@pytest.fixture(scope="session")
def cdc_env(cdc_stack: TestStack) -> dict[str, str]:
    return cdc_stack.env()


@pytest.fixture
def cdc_unique() -> str:
    return uuid.uuid4().hex[:10]


class Workers:
    """Workers one test started, as subprocesses on the test's stack; all stopped after it."""

    def __init__(self, stack: TestStack, env: dict[str, str], log_dir: Path) -> None:
        self.stack, self.env, self.log_dir = stack, env, log_dir
        self.started: list = []

    def replication(self, pair: str, **kw):
        """The Faust worker of one replication pair (`cdc worker --pair <pair>`)."""
        return self._start(pair, saga=False, **kw)

    def saga(self, name: str, mode: str = "orchestration", extra_env: dict[str, str] | None = None, **kw):
        """A saga worker: a participant service's, or the coordinator (orchestrator / monitor)."""
        return self._start(name, saga=True, extra_env={"CDC_SAGA_MODE": mode, **(extra_env or {})}, **kw)

    def wait_healthy(self, timeout: float = 120) -> None:
        for worker in self.started:
            worker.wait_healthy(timeout)

    def _start(self, name: str, **kw):
        from cdc_testing.workers import WorkerProcess

        worker = WorkerProcess(name, {**self.stack.process_env, **self.env}, self.log_dir, **kw)
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture
def cdc_workers(cdc_stack: TestStack, cdc_env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    workers = Workers(cdc_stack, cdc_env, tmp_path)
    yield workers
    workers.stop_all()


@pytest.fixture
def cdc_faults(cdc_stack: TestStack):
    """Faults injected in a test are healed after it (the stack is shared by the next test)."""
    from cdc_testing.faults import Faults

    faults = Faults(cdc_stack)
    yield faults
    faults.heal()


@pytest.fixture
def cdc_events(cdc_env: dict[str, str]):
    """`cdc_events(topic, ...)` opens a reader from the topics' current end: `.wait_for(match, n, timeout, what)`."""
    from cdc_testing.events import TopicReader
    from stack.kafka_client import ADMIN, access

    readers: list[TopicReader] = []

    def open_reader(*topics: str) -> TopicReader:
        reader = TopicReader(access(cdc_env, ADMIN), list(topics))
        readers.append(reader)
        return reader

    yield open_reader
    for reader in readers:
        reader.close()
