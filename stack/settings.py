"""Where the local stack lives and which ports it uses: environment variables with local defaults.

CDC_STACK_DIR  run folder of one stack (default .stack/dev); a test stack uses another
CDC_PORT_BASE  first port; a stack holds base .. base+1599 (stack/ports.py), each port derived
               from a fixed offset or a name, unless set one by one: CDC_<SERVICE>_PG_PORT,
               CDC_KAFKA_PORT, CDC_KAFKA_CONTROLLER_PORT, CDC_CONNECT_PORT,
               CDC_WORKERS_WEB_PORT (first of the 1000 ports of the workers' /healthz)
CDC_CONNECT_WORKERS  Kafka Connect workers in one cluster (default 1); worker k listens on
               CDC_CONNECT_PORT + k - 1, and a killed worker's connectors move to the others
CDC_<COMPONENT>_PORT  a domain component's port (default derived from its name)
CDC_JARS_DIR   resolved jars, shared by every stack of a checkout (default .stack/jars)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from services.registry import ServiceSpec, current
from stack import ports

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT_BASE = 15400
HOST = "127.0.0.1"  # loopback only, and never "localhost" (it may resolve to ::1)


def _port(env: str, default: int) -> int:
    raw = os.environ.get(env)
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise SystemExit(f"{env}={raw!r} is not a port number") from None
    if not 1024 <= port <= 65535:
        raise SystemExit(f"{env}={port} is outside 1024-65535")
    return port


MAX_CONNECT_WORKERS = 8  # their ports sit between Connect's and the databases' (base+2 .. base+9)


def _connect_workers() -> int:
    raw = os.environ.get("CDC_CONNECT_WORKERS") or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_CONNECT_WORKERS:
        raise SystemExit(f"CDC_CONNECT_WORKERS={raw!r}: a number of Kafka Connect workers, 1-{MAX_CONNECT_WORKERS}")
    return int(raw)


@dataclass(frozen=True)
class StackSettings:
    run_dir: Path
    jars_dir: Path
    pg_ports: dict[str, int]
    kafka_port: int
    controller_port: int
    connect_port: int
    workers_web_port_base: int
    component_ports: dict[str, int]
    connect_workers: int = 1
    console_port: int = 0

    @classmethod
    def from_env(cls) -> StackSettings:
        base = _port("CDC_PORT_BASE", DEFAULT_PORT_BASE)
        run_dir = Path(os.environ.get("CDC_STACK_DIR") or REPO_ROOT / ".stack" / "dev").resolve()
        jars_dir = Path(os.environ.get("CDC_JARS_DIR") or REPO_ROOT / ".stack" / "jars").resolve()
        services = current().services
        derived = ports.allocate([s.name for s in services], base + ports.PG_FIRST, ports.PG_COUNT)
        pg_ports = {s.name: _port(f"CDC_{s.env_prefix}_PG_PORT", derived[s.name]) for s in services}
        components = current().components
        derived = ports.allocate([c.name for c in components], base + ports.COMPONENTS_FIRST, ports.COMPONENTS_COUNT)
        component_ports = {c.name: _port(f"CDC_{c.name.upper()}_PORT", derived[c.name]) for c in components}
        return cls(
            run_dir=run_dir,
            jars_dir=jars_dir,
            pg_ports=pg_ports,
            kafka_port=_port("CDC_KAFKA_PORT", base + ports.KAFKA_OFFSET),
            controller_port=_port("CDC_KAFKA_CONTROLLER_PORT", base + ports.CONTROLLER_OFFSET),
            connect_port=_port("CDC_CONNECT_PORT", base + ports.CONNECT_OFFSET),
            workers_web_port_base=_port("CDC_WORKERS_WEB_PORT", base + ports.WORKERS_FIRST),
            component_ports=component_ports,
            connect_workers=_connect_workers(),
            console_port=_port("CDC_CONSOLE_PORT", base + ports.CONSOLE_OFFSET),
        )

    # --- derived addresses -------------------------------------------------------------
    @property
    def kafka_bootstrap(self) -> str:
        return f"{HOST}:{self.kafka_port}"

    @property
    def console_url(self) -> str:
        return f"http://{HOST}:{self.console_port}"

    @property
    def connect_url(self) -> str:
        return f"http://{HOST}:{self.connect_port}"

    def connect_worker_names(self) -> list[str]:
        """"connect" (the first worker, as always), then "connect-2", "connect-3", ..."""
        return ["connect", *(f"connect-{k}" for k in range(2, self.connect_workers + 1))]

    def connect_worker_port(self, name: str) -> int:
        return self.connect_port + (0 if name == "connect" else int(name.rsplit("-", 1)[1]) - 1)

    @property
    def connect_urls(self) -> list[str]:
        return [f"http://{HOST}:{self.connect_worker_port(n)}" for n in self.connect_worker_names()]

    def worker_port(self, worker: str, every_worker: list[str]) -> int:
        """The /healthz port of one worker, derived from its name among every worker's."""
        return ports.allocate(every_worker, self.workers_web_port_base, ports.WORKERS_COUNT)[worker]

    def port_env_names(self) -> dict[int, str]:
        """Which variable moves which port, for 'port already taken' messages."""
        names = {p: f"CDC_{n.upper()}_PG_PORT" for n, p in self.pg_ports.items()}
        names[self.kafka_port] = "CDC_KAFKA_PORT"
        names[self.controller_port] = "CDC_KAFKA_CONTROLLER_PORT"
        for n in self.connect_worker_names():
            names[self.connect_worker_port(n)] = "CDC_CONNECT_PORT" if n == "connect" else f"CDC_CONNECT_PORT (+{n})"
        names.update({p: f"CDC_{n.upper()}_PORT" for n, p in self.component_ports.items()})
        return names

    # --- run folder layout -----------------------------------------------------------
    @property
    def env_file(self) -> Path:
        return self.run_dir / "env"

    @property
    def secrets_file(self) -> Path:
        return self.run_dir / "secrets.env"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def pids_dir(self) -> Path:
        return self.run_dir / "run"

    @property
    def etc_dir(self) -> Path:
        return self.run_dir / "etc"

    @property
    def kafka_data_dir(self) -> Path:
        return self.run_dir / "kafka"

    @property
    def pg_root(self) -> Path:
        return self.run_dir / "pg"

    def pg_data_dir(self, service: ServiceSpec) -> Path:
        return self.pg_root / service.name
