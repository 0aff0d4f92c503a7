"""Ports for processes a test starts, which bind them a moment later."""
from __future__ import annotations

import random
import socket
from pathlib import Path

PORT_TAKEN = "address already in use"


def _above_ephemeral() -> range:
    """Ports the kernel never hands out for outgoing connections (Kafka, PostgreSQL and HTTP
    clients take hundreds a minute): above net.ipv4.ip_local_port_range (below it if no room)."""
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(high + 1, 65536) if high < 65000 else range(max(1024, low - 5000), low)


def free_port() -> int:
    """A port free now, for a worker to bind in a moment. It is released before the worker binds
    it, so it is taken from outside the ephemeral range (no client connection can take it
    meanwhile), at random (concurrent test runs rarely meet); a worker that still finds it taken
    is started again on another (tests/integration/workers.py, tests/db/conftest.py)."""
    ports = _above_ephemeral()
    for _ in range(100):
        port = random.choice(ports)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports}")
