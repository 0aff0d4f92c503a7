"""`cdc worker` (one pair, foreground) and `cdc workers start|stop|status` (every pair, in the background)."""
from __future__ import annotations

import sys
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.table import Table

from cli import stack_env
from stack.processes import read_pid, spawn, stop, wait_until
from stack.settings import StackSettings
from streams import spec as spec_mod
from streams.app import WorkerSettings

app = typer.Typer(help="Replication workers of every pair, in the background.", no_args_is_help=True)
out = Console()


def _web_port(settings: StackSettings, index: int) -> int:
    return settings.workers_web_port_base + index


def worker(pair: str = typer.Option(..., "--pair", help="Replication pair name (streams/replication.json)."),
           web_port: int = typer.Option(0, "--web-port", help="Port of /healthz and /metrics (default: per pair)."),
           session_timeout: float = typer.Option(30.0, "--session-timeout", help="Kafka session timeout, seconds."),
           batch_max: int = typer.Option(5000, "--batch-max", help="Largest batch applied in one transaction."),
           loglevel: str = typer.Option("info", "--loglevel"),
           spec_path: Path = typer.Option(spec_mod.SPEC_FILE, "--spec", help="Replication spec file.")) -> None:
    """Run the replication worker of one pair in the foreground."""
    from streams.worker import run

    try:
        spec = spec_mod.load(spec_path)
        p = spec.pair(pair)
    except (spec_mod.SpecError, KeyError) as exc:
        Console(stderr=True).print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(2) from None
    env = stack_env.load()
    settings = StackSettings.from_env()
    port = web_port or _web_port(settings, [x.name for x in spec.pairs].index(pair))
    ws = WorkerSettings(bootstrap=env["KAFKA_BOOTSTRAP_SERVERS"],
                        target_dsn=env[f"{p.target.service.upper()}_DATABASE_URL"], web_port=port,
                        session_timeout=session_timeout, rebalance_timeout=session_timeout, batch_max=batch_max)
    sys.argv = [sys.argv[0], "worker"]  # Faust's Worker reads argv
    run(pair, ws, loglevel=loglevel, spec_path=spec_path)


def _pid_file(settings: StackSettings, pair: str):
    return settings.pids_dir / f"worker-{pair}.pid"


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@app.command()
def start() -> None:
    """Start one worker per replication pair (idempotent) and wait until each has its partitions."""
    spec = spec_mod.load()
    settings = StackSettings.from_env()
    stack_env.load()
    for i, pair in enumerate(spec.pairs):
        pid_file = _pid_file(settings, pair.name)
        if read_pid(pid_file):
            out.print(f"worker {pair.name} running")
            continue
        log = settings.logs_dir / f"worker-{pair.name}.log"
        pid = spawn([sys.executable, "-m", "cli", "worker", "--pair", pair.name], log, pid_file)
        port = _web_port(settings, i)

        def ready(port: int = port) -> bool:
            return _healthy(port)

        def alive(pid_file: Path = pid_file) -> bool:
            return read_pid(pid_file) is not None

        wait_until(f"worker {pair.name}", ready, timeout=90, alive=alive, log_file=log)
        out.print(f"worker {pair.name} started (pid {pid}, http://127.0.0.1:{port}/healthz)")


@app.command("stop")
def stop_all() -> None:
    """Stop every replication worker (SIGTERM; unacknowledged batches are redelivered)."""
    settings = StackSettings.from_env()
    for pair in spec_mod.load().pairs:
        if stop(_pid_file(settings, pair.name), timeout=30):
            out.print(f"worker {pair.name} stopped")


@app.command()
def status() -> None:
    """Health of every replication worker."""
    settings = StackSettings.from_env()
    table = Table("pair", "pid", "health")
    ok = True
    for i, pair in enumerate(spec_mod.load().pairs):
        pid = read_pid(_pid_file(settings, pair.name))
        try:
            health = httpx.get(f"http://127.0.0.1:{_web_port(settings, i)}/healthz", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            health = {"healthy": False, "reason": "not answering"}
        ok = ok and bool(health.get("healthy"))
        table.add_row(pair.name, str(pid or "-"), f"{'ok' if health.get('healthy') else health.get('reason')}")
    out.print(table)
    if not ok:
        raise typer.Exit(3)
