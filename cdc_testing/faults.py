"""Fault injection for tests of services on the real pipeline: kill -9, pause (SIGSTOP) or stop a
named part of the stack, or a worker the test started, at the moment a condition holds (for
example when a saga reaches a given step), then heal everything as `make up` would."""
from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from cdc_testing.polling import poll
from cdc_testing.stack import TestStack
from cdc_testing.workers import WorkerProcess
from stack.processes import read_pid

Target = str | WorkerProcess
# stack parts by name: "kafka" (the broker), "connect" and "connect-<k>" (Connect workers),
# "postgres:<service>" (a service's database), "component:<name>" (a domain component)
PG_PREFIX, COMPONENT_PREFIX = "postgres:", "component:"


class Faults:
    """What a test broke, so that `heal()` (called by the fixture at teardown too) repairs it."""

    def __init__(self, stack: TestStack, connect_patience: float = 300) -> None:
        self.stack = stack
        self.connect_patience = connect_patience
        self.injected: list[tuple[str, str]] = []  # (action, target), in order
        self._paused: list[Target] = []
        self._killed_workers: list[WorkerProcess] = []
        self._stack_hit = False

    def pid(self, name: str) -> int:
        """The running process of a named stack part; fails saying which parts exist."""
        pid_file = self._pid_file(name)
        pid = read_pid(pid_file) if pid_file.name != "postmaster.pid" else _postmaster(pid_file)
        if pid is None:
            raise AssertionError(f"{name} is not running (no live pid in {pid_file}); parts: {self.parts()}")
        return pid

    def parts(self) -> list[str]:
        """Names of the stack parts that can be hit in this run folder."""
        run = self.stack.stack_dir / "run"
        names = sorted(p.stem for p in run.glob("*.pid") if not p.stem.startswith("component-"))
        names += sorted(COMPONENT_PREFIX + p.stem.removeprefix("component-") for p in run.glob("component-*.pid"))
        names += sorted(PG_PREFIX + d.name for d in (self.stack.stack_dir / "pg").glob("*") if (d / "PG_VERSION").exists())
        return names

    def when(self, condition: Callable[[], bool], expected: str, timeout: float = 120) -> Faults:
        """Wait until `condition()` holds (the chosen moment), then return self to inject:
        `faults.when(lambda: step_of(saga) == 1, "the saga at its second step").kill("kafka")`."""
        poll(condition, bool, timeout, expected)
        return self

    def kill(self, target: Target) -> None:
        """kill -9: no shutdown, no flush, as a crash or an OOM kill."""
        self._record("kill -9", target)
        if isinstance(target, WorkerProcess):
            target.kill9()
            self._killed_workers.append(target)
        else:
            os.kill(self.pid(target), signal.SIGKILL)
            self._stack_hit = True

    def pause(self, target: Target) -> None:
        """SIGSTOP: alive and holding its connections, answering nothing (a hung process, a long GC)."""
        self._record("pause", target)
        if isinstance(target, WorkerProcess):
            target.pause()
        else:
            os.kill(self.pid(target), signal.SIGSTOP)
        self._paused.append(target)

    def resume(self, target: Target) -> None:
        self._record("resume", target)
        if isinstance(target, WorkerProcess):
            target.resume()
        else:
            os.kill(self.pid(target), signal.SIGCONT)
        self._paused = [t for t in self._paused if t is not target and t != target]

    def stop_database(self, service: str) -> None:
        """A clean shutdown of one service's PostgreSQL (`cdc db stop`): clients see refused connections."""
        self._record("stop", PG_PREFIX + service)
        self.stack.cli("db", "stop", service)
        self._stack_hit = True

    def start_database(self, service: str) -> None:
        self._record("start", PG_PREFIX + service)
        self.stack.cli("db", "start", service)

    def heal(self) -> None:
        """Resume what is paused, start what is down (`cdc up`, idempotent) and wait for the
        connectors to run again, restart killed workers. Safe to call when nothing was hit."""
        for target in list(self._paused):
            self.resume(target)
        if self._stack_hit:
            self.stack.cli("up")
            self._wait_connectors_running()
            self._stack_hit = False
        for worker in self._killed_workers:
            if worker.proc.poll() is not None and worker in WorkerProcess.live:
                worker.restart()
        self._killed_workers.clear()

    def _wait_connectors_running(self) -> None:
        from connectors.connect_api import ConnectClient

        client = ConnectClient(self.stack.env()["CONNECT_URL"])
        try:
            client.wait_running(client.names(), timeout=self.connect_patience)
        finally:
            client.close()

    def _record(self, action: str, target: Target) -> None:
        self.injected.append((action, target.pair if isinstance(target, WorkerProcess) else target))

    def _pid_file(self, name: str) -> Path:
        if name.startswith(PG_PREFIX):
            return self.stack.stack_dir / "pg" / name.removeprefix(PG_PREFIX) / "postmaster.pid"
        if name.startswith(COMPONENT_PREFIX):
            return self.stack.stack_dir / "run" / f"component-{name.removeprefix(COMPONENT_PREFIX)}.pid"
        return self.stack.stack_dir / "run" / f"{name}.pid"


def _postmaster(pid_file: Path) -> int | None:
    """PostgreSQL's own pid file: its first line is the postmaster's pid."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # the cluster runs as another OS user (stack/postgres.py os_user)
        return pid
    return pid
