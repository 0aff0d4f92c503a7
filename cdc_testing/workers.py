"""Real Faust workers as subprocesses (`python -m cli worker`, `saga-worker`), for tests: started
on a port of their own, waited for through /healthz, killed, paused and restarted on demand."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from cdc_testing.polling import poll
from cdc_testing.ports import PORT_TAKEN, free_port

REPO = Path(__file__).resolve().parents[1]  # this project's checkout (an editable install)
# A saga worker stuck for 15 s restarts itself (streams/liveness.py), well inside a saga's step timeouts.
SAGA_TEST_ENV = {"CDC_WORKER_STALL_RESTART": "15"}


class WorkerProcess:
    """A replication worker of `pair` (or, with `saga=True`, the saga worker named `pair`)."""

    live: list[WorkerProcess] = []  # for diagnose()

    def __init__(self, pair: str, env: dict[str, str], log_dir: Path, session_timeout: float = 6.0,
                 saga: bool = False, extra_env: dict[str, str] | None = None, args: list[str] | None = None,
                 cwd: Path | None = None) -> None:
        self.pair = pair
        self.log_dir = log_dir
        self.verb = [*(["saga-worker", pair] if saga else ["worker", "--pair", pair]), *(args or []),
                     "--session-timeout", str(session_timeout)]
        self.env = {**os.environ, **env, **(SAGA_TEST_ENV if saga else {}), **(extra_env or {})}
        self.cwd = cwd
        self.launches = 0
        self._launch()
        WorkerProcess.live.append(self)

    def _launch(self) -> None:
        self.launches += 1
        self.port = free_port()
        self.log = self.log_dir / f"worker-{self.pair}-{self.port}.log"
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen([sys.executable, "-m", "cli", *self.verb, "--web-port", str(self.port)],
                                         cwd=self.cwd, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def _relaunch_if_port_taken(self) -> None:
        """Another process bound the port between free_port() and the worker: start it again."""
        if self.proc.poll() is not None and self.launches < 3 and PORT_TAKEN in self.log.read_text(errors="replace"):
            self._launch()

    def health(self) -> dict:
        self._relaunch_if_port_taken()
        try:
            # a saga worker's /healthz asks the broker for offsets first: seconds on a busy box
            resp = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=10)
            return {"status": resp.status_code, **resp.json()}
        except (httpx.HTTPError, ValueError) as exc:
            return {"status": None, "error": str(exc), "exit": self.proc.poll()}

    def wait_healthy(self, timeout: float = 120) -> dict:
        def fetch() -> dict:
            self._relaunch_if_port_taken()
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.pair} exited {self.proc.returncode}:\n{self.tail()}")
            return self.health()
        return poll(fetch, lambda h: h.get("status") == 200, timeout, f"worker {self.pair} healthy with partitions")

    def wait_exit(self, timeout: float = 60) -> int:
        """The worker's exit code (a start that found its port taken is retried first)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                code = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise AssertionError(f"worker {self.pair} still running after {timeout:.0f}s:\n{self.tail()}") from None
            self._relaunch_if_port_taken()
            if self.proc.poll() is not None:
                return code

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: the process holds its sockets and group membership but does nothing (a hung worker)."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        """Start it again (after a kill, or kill it first), on a new port, with the same arguments."""
        if self.proc.poll() is None:
            self.kill9()
        self.launches = 0
        self._launch()
        if self not in WorkerProcess.live:
            WorkerProcess.live.append(self)

    def stop(self) -> None:
        if self in WorkerProcess.live:
            WorkerProcess.live.remove(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused worker cannot handle SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def diagnose(lines: int = 12) -> str:
    """Health and last log lines of every worker a test started: for failure messages."""
    parts = []
    for w in WorkerProcess.live:
        parts.append(f"--- worker {w.pair} (pid {w.proc.pid}, exit {w.proc.poll()}): {w.health()}\n{w.tail(lines)}")
    return "\n".join(parts)
