"""Starting, finding and stopping the stack's background processes, by pid file, and waiting
for readiness with a deadline instead of sleeping."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from stack.ports import SPAN
from stack.settings import DEFAULT_PORT_BASE


class StackError(RuntimeError):
    """An error a newcomer can act on: the message says what happened and what to do."""


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def read_pid(pid_file: Path) -> int | None:
    """The pid recorded by `spawn`, if that process still runs. The file also holds the
    process's start time: after a reboot a reused pid belongs to someone else."""
    try:
        lines = pid_file.read_text().split()
        pid = int(lines[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    if not pid_alive(pid):
        return None
    if len(lines) > 1 and lines[1] != _start_time(pid):
        return None
    return pid


def _start_time(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat: start time in clock ticks since boot."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(") ", 1)[1].split()[19]
    except (FileNotFoundError, IndexError):
        return ""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def spawn(cmd: Sequence[str], log_file: Path, pid_file: Path, env: dict[str, str] | None = None) -> int:
    """Start a detached process (own session, so `make` returning does not kill it)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            list(cmd), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env,
        )
    pid_file.write_text(f"{proc.pid} {_start_time(proc.pid)}\n")
    return proc.pid


def stop(pid_file: Path, timeout: float = 60.0) -> bool:
    """SIGTERM, wait, then SIGKILL. Returns True if something was running."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:  # ended between the check and the signal
        pid_file.unlink(missing_ok=True)
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            break
        _reap(pid)
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(
    what: str,
    ready: Callable[[], bool],
    timeout: float,
    alive: Callable[[], bool] | None = None,
    log_file: Path | None = None,
    interval: float = 0.3,
) -> None:
    """Poll `ready` until it holds; fail fast if the process died, with its log's tail."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if alive is not None and not alive():
            raise StackError(f"{what} died while starting. Last lines of {log_file}:\n{tail(log_file) if log_file else ''}")
        if time.monotonic() > deadline:
            hint = f" Last lines of {log_file}:\n{tail(log_file)}" if log_file else ""
            raise StackError(f"{what} was not ready after {timeout:.0f}s.{hint}")
        time.sleep(interval)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def check_ports_free(ports: dict[int, str]) -> None:
    taken = [(p, name) for p, name in ports.items() if port_in_use(p)]
    if taken:
        lines = ", ".join(f"{p} ({name})" for p, name in taken)
        raise StackError(
            f"port(s) already taken: {lines}. Another program (or another stack) listens there. "
            f"Stop it, or move this stack: e.g. CDC_PORT_BASE={DEFAULT_PORT_BASE + SPAN} make up (a stack holds "
            f"{SPAN} ports from its base, so bases {SPAN} apart never meet), or set the variable named."
        )
