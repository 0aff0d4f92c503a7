"""Real Faust replication workers as subprocesses (`python -m cli worker`), for tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.polling import poll

REPO = Path(__file__).resolve().parents[2]
# A saga worker stuck for 15 s restarts itself (streams/liveness.py), well inside a saga's step timeouts.
SAGA_TEST_ENV = {"CDC_WORKER_STALL_RESTART": "15"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WorkerProcess:
    """A replication worker of `pair` (or, with `saga=True`, the saga worker named `pair`)."""

    live: list[WorkerProcess] = []  # for diagnose()

    def __init__(self, pair: str, env: dict[str, str], log_dir: Path, session_timeout: float = 6.0,
                 saga: bool = False, extra_env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.pair = pair
        self.port = free_port()
        self.log = log_dir / f"worker-{pair}-{self.port}.log"
        verb = [*(["saga-worker", pair] if saga else ["worker", "--pair", pair]), *(args or [])]
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli", *verb, "--web-port", str(self.port), "--session-timeout", str(session_timeout)],
                cwd=REPO, env={**os.environ, **env, **(SAGA_TEST_ENV if saga else {}), **(extra_env or {})},
                stdout=fh, stderr=subprocess.STDOUT,
                start_new_session=True)
        WorkerProcess.live.append(self)

    def health(self) -> dict:
        try:
            resp = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2)
            return {"status": resp.status_code, **resp.json()}
        except (httpx.HTTPError, ValueError) as exc:
            return {"status": None, "error": str(exc), "exit": self.proc.poll()}

    def wait_healthy(self, timeout: float = 60) -> dict:
        def fetch() -> dict:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.pair} exited {self.proc.returncode}:\n{self.tail()}")
            return self.health()
        return poll(fetch, lambda h: h.get("status") == 200, timeout, f"worker {self.pair} healthy with partitions")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self in WorkerProcess.live:
            WorkerProcess.live.remove(self)
        if self.proc.poll() is None:
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
