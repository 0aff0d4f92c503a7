"""Domain components (`services.registry.Component`): processes a domain needs beside its
services, such as an external provider it calls or a mail server, started and stopped with the
stack by pid file, their addresses in `make env` (<NAME>_URL)."""
from __future__ import annotations

import socket
import sys

import httpx

from services.registry import Component, current
from stack.processes import read_pid, spawn, stop, wait_until
from stack.settings import HOST, StackSettings


def url(s: StackSettings, c: Component) -> str:
    return f"{c.scheme}://{HOST}:{s.component_ports[c.name]}"


def _pid_file(s: StackSettings, name: str):
    return s.pids_dir / f"component-{name}.pid"


def _ready(s: StackSettings, c: Component) -> bool:
    port = s.component_ports[c.name]
    if c.health is None:
        with socket.socket() as sock:
            sock.settimeout(1)
            return sock.connect_ex((HOST, port)) == 0
    try:
        return httpx.get(f"http://{HOST}:{port}{c.health}", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def running(s: StackSettings, c: Component) -> bool:
    return read_pid(_pid_file(s, c.name)) is not None


def start(s: StackSettings, c: Component) -> bool:
    """Start one component (idempotent); True if it was started now."""
    pid_file = _pid_file(s, c.name)
    if read_pid(pid_file):
        return False
    data = s.run_dir / "components" / c.name
    data.mkdir(parents=True, exist_ok=True)
    log = s.logs_dir / f"component-{c.name}.log"
    spawn([sys.executable, "-m", c.module, "--port", str(s.component_ports[c.name]), "--data", str(data)], log, pid_file)
    wait_until(f"component {c.name}", lambda: _ready(s, c), timeout=60,
               alive=lambda: read_pid(pid_file) is not None, log_file=log)
    return True


def start_all(s: StackSettings, log=print) -> None:
    for c in current().components:
        started = start(s, c)
        log(f"{c.name} {'started' if started else 'running'}  {url(s, c)}")


def stop_all(s: StackSettings, log=print) -> None:
    """Every component of the run folder, also those of domains no longer enabled."""
    for pid_file in sorted(s.pids_dir.glob("component-*.pid")):
        if stop(pid_file, timeout=30):
            log(f"{pid_file.stem} stopped")
