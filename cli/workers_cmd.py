"""`cdc worker` (one pair, foreground) and `cdc workers start|stop|status` (every pair, in the background)."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.table import Table

from cli import stack_env
from connectors.acls import replication_principal, saga_principal
from stack.kafka_client import access
from stack.processes import read_pid, spawn, stop, wait_until
from stack.settings import StackSettings
from streams import spec as spec_mod
from streams.app import WorkerSettings

WATCH = "connectors-watch"  # `cdc connectors watch`: restarts failed connectors, started and stopped with the workers
app = typer.Typer(help="Replication workers of every pair, in the background.", no_args_is_help=True)
out = Console()


def _web_port(settings: StackSettings, worker: str) -> int:
    """A worker's /healthz port, derived from its name among every worker's (see stack/ports.py)."""
    return settings.worker_port(worker, [w for w, _ in _every_worker()])


def _every_worker() -> list[tuple[str, list[str]]]:
    """(name, `cdc` verb) of every worker: one per replication pair, then the saga workers of each mode."""
    from services.registry import current
    from streams.sagas.worker import MODES, names

    found = [(WATCH, ["connectors", "watch"])]
    found += [(p.name, ["worker", "--pair", p.name]) for p in spec_mod.load_enabled().pairs]
    found += [(m.worker_name, ["readmodel", "worker", m.name]) for m in current().read_models]
    for m in MODES:
        found += [(_saga_worker_name(m, n), ["saga-worker", n, "--mode", m]) for n in names(m)]
    return found


def worker(pair: str = typer.Option(..., "--pair", help="Replication pair name (a domain's replication.json)."),
           web_port: int = typer.Option(0, "--web-port", help="Port of /healthz and /metrics (default: per pair)."),
           session_timeout: float = typer.Option(30.0, "--session-timeout", help="Kafka session timeout, seconds."),
           batch_max: int = typer.Option(5000, "--batch-max", help="Largest batch applied in one transaction."),
           purge_every: float = typer.Option(300.0, "--purge-every", envvar="CDC_REPLICATION_PURGE_EVERY",
                                             help="Seconds between purges of delete markers older than the source "
                                                  "topic's retention plus a day."),
           stall_restart: float = typer.Option(60.0, "--stall-restart", envvar="CDC_WORKER_STALL_RESTART",
                                               help="Restart in place after a partition is behind this many "
                                                    "seconds without progress."),
           loglevel: str = typer.Option("info", "--loglevel"),
           faust_drain: bool = typer.Option(False, "--faust-drain",
                                            help="Faust's own per-message drain instead of the direct one "
                                                 "(streams/direct_drain.py); for `make bench` comparisons."),
           spec_path: Path = typer.Option(None, "--spec", help="Replication spec file (default: the enabled "
                                                               "domains' pairs).")) -> None:
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
    port = web_port or _web_port(settings, pair)
    ws = WorkerSettings(kafka=access(env, replication_principal(p.name)),
                        target_dsn=env[f"{p.target.service.upper()}_DATABASE_URL"], web_port=port,
                        session_timeout=session_timeout, rebalance_timeout=session_timeout, batch_max=batch_max,
                        purge_every=purge_every, stall_restart=stall_restart, direct_drain=not faust_drain)
    sys.argv = [sys.argv[0], "worker"]  # Faust's Worker reads argv
    run(pair, ws, loglevel=loglevel, spec_path=spec_path)


def _saga_mode(mode: str) -> str:
    from streams.sagas.worker import MODES

    if mode not in MODES:
        Console(stderr=True).print(f"[red]refused:[/red] unknown saga mode {mode!r}; known: {', '.join(MODES)}")
        raise typer.Exit(2)
    return mode


MODE_OPTION = typer.Option("orchestration", "--mode", envvar="CDC_SAGA_MODE",
                           help="orchestration (an orchestrator drives each saga) or choreography "
                                "(participants react to each other's events; a monitor records them).")


def saga_worker(name: str = typer.Argument(..., help="orchestrator (or monitor in the choreographed mode), or a "
                                                     "participant service of an enabled saga"),
                web_port: int = typer.Option(0, "--web-port", help="Port of /healthz (default: per worker)."),
                session_timeout: float = typer.Option(30.0, "--session-timeout"),
                timeout_scale: float = typer.Option(1.0, "--timeout-scale", envvar="CDC_SAGA_TIMEOUT_SCALE",
                                                    help="Multiply every saga step timeout."),
                stall_restart: float = typer.Option(60.0, "--stall-restart", envvar="CDC_WORKER_STALL_RESTART",
                                                    help="Restart in place after a partition is behind this many "
                                                         "seconds without progress."),
                housekeeping_every: float = typer.Option(30.0, "--housekeeping-every",
                                                         envvar="CDC_SAGA_HOUSEKEEPING_EVERY",
                                                         help="Seconds between purges of published outbox rows "
                                                              "and of inbox rows the topics can no longer redeliver."),
                mode: str = MODE_OPTION,
                loglevel: str = typer.Option("info", "--loglevel")) -> None:
    """Run one saga worker (the orchestrator or monitor, or a participant) in the foreground."""
    from streams.sagas.worker import names, run

    mode = _saga_mode(mode)
    known = names(mode)
    if name not in known:
        Console(stderr=True).print(f"[red]refused:[/red] unknown saga worker {name!r} in the {mode} mode; "
                                   f"known: {', '.join(known)}")
        raise typer.Exit(2)
    env = stack_env.load()
    settings = StackSettings.from_env()
    from services.registry import SAGA_STORE, current
    from streams.sagas.apps import SagaWorkerSettings

    # the orchestrator and the monitor keep their state in the saga store
    service = current().service(SAGA_STORE if name in ("orchestrator", "monitor") else name)
    ws = SagaWorkerSettings(kafka=access(env, saga_principal(mode, name)), dsn=env[f"{service.env_prefix}_DATABASE_URL"],
                            web_port=web_port or _web_port(settings, _saga_worker_name(mode, name)),
                            session_timeout=session_timeout, timeout_scale=timeout_scale,
                            stall_restart=stall_restart, housekeeping_every=housekeeping_every,
                            connect_url=env.get("CONNECT_URL"))
    run(name, ws, mode=mode, loglevel=loglevel)


def _pid_file(settings: StackSettings, pair: str):
    return settings.pids_dir / f"worker-{pair}.pid"


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass(frozen=True)
class BackgroundWorker:
    name: str          # pid and log files: worker-<name>
    argv: list[str]    # the `cdc` verb that runs it
    port: int          # its /healthz


def _saga_worker_name(mode: str, name: str) -> str:
    return f"saga-{name}" if mode == "orchestration" else f"saga-{mode}-{name}"


def _background_workers(settings: StackSettings, mode: str | None) -> list[BackgroundWorker]:
    """One replication worker per pair, then the saga coordinator and every participant of
    `mode` (None: the workers of every mode, for stop)."""
    every = _every_worker()
    ports = {w: settings.worker_port(w, [n for n, _ in every]) for w, _ in every}
    return [BackgroundWorker(name, argv, ports[name]) for name, argv in every
            if argv[0] in ("worker", "connectors", "readmodel") or mode is None or argv[-1] == mode]


def background_workers(settings: StackSettings, mode: str | None = None) -> list[BackgroundWorker]:
    """Every worker `make workers` runs, with its /healthz port (the console reads them too)."""
    return _background_workers(settings, mode)


def running_saga_workers(settings: StackSettings, mode: str) -> list[str]:
    """Saga workers of `mode` that `workers start` left running in the background."""
    from streams.sagas.worker import names

    return [n for n in names(mode) if read_pid(_pid_file(settings, _saga_worker_name(mode, n)))]


def _refuse_mixed_modes(settings: StackSettings, mode: str) -> None:
    """Both modes at once would run every saga twice (an orchestrator and the choreography)."""
    from streams.sagas.worker import MODES

    for other in (m for m in MODES if m != mode):
        running = running_saga_workers(settings, other)
        if running:
            Console(stderr=True).print(f"[red]refused:[/red] saga workers of the {other} mode are running "
                                       f"({', '.join(running)}); stop them first (make workers-stop)")
            raise typer.Exit(2)


@app.command()
def start(mode: str = MODE_OPTION) -> None:
    """Start every worker (idempotent) and wait until each holds its partitions."""
    settings = StackSettings.from_env()
    stack_env.load()
    _refuse_mixed_modes(settings, _saga_mode(mode))
    for w in _background_workers(settings, mode):
        launch(settings, w)


def launch(settings: StackSettings, w: BackgroundWorker) -> None:
    """Start one background worker (idempotent) and wait until it is healthy."""
    pid_file = _pid_file(settings, w.name)
    if read_pid(pid_file):
        out.print(f"worker {w.name} running")
        return
    log = settings.logs_dir / f"worker-{w.name}.log"
    pid = spawn([sys.executable, "-m", "cli", *w.argv], log, pid_file)

    def ready(port: int = w.port) -> bool:
        return _healthy(port)

    def alive(pid_file: Path = pid_file) -> bool:
        return read_pid(pid_file) is not None

    wait_until(f"worker {w.name}", ready, timeout=90, alive=alive, log_file=log)
    out.print(f"worker {w.name} started (pid {pid}, http://127.0.0.1:{w.port}/healthz)")


def background_worker(settings: StackSettings, name: str) -> BackgroundWorker:
    """One background worker by name (e.g. readmodel-link-clicks)."""
    found = [w for w in _background_workers(settings, None) if w.name == name]
    if not found:
        raise KeyError(f"no background worker {name!r}")
    return found[0]


def stop_one(settings: StackSettings, name: str) -> bool:
    """Stop one background worker; True if it was running."""
    return stop(_pid_file(settings, name), timeout=30)


@app.command("stop")
def stop_all() -> None:
    """Stop every worker (SIGTERM; unacknowledged messages are redelivered)."""
    settings = StackSettings.from_env()
    declared = [_pid_file(settings, w.name) for w in _background_workers(settings, None)]
    # then any other: a pair taken out of its replication.json after its worker started
    leftovers = sorted(set(settings.pids_dir.glob("worker-*.pid")) - set(declared))
    for pid_file in declared + leftovers:
        if stop(pid_file, timeout=30):
            out.print(f"worker {pid_file.stem.removeprefix('worker-')} stopped")


@app.command()
def status(mode: str = MODE_OPTION) -> None:
    """Health of every worker."""
    settings = StackSettings.from_env()
    table = Table("worker", "pid", "health", "metrics (Prometheus)")
    ok = True
    for w in _background_workers(settings, _saga_mode(mode)):
        pid = read_pid(_pid_file(settings, w.name))
        try:
            health = httpx.get(f"http://127.0.0.1:{w.port}/healthz", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            health = {"healthy": False, "reason": "not answering"}
        ok = ok and bool(health.get("healthy"))
        table.add_row(w.name, str(pid or "-"), "ok" if health.get("healthy") else str(health.get("reason")),
                      f"127.0.0.1:{w.port}/metrics")
    out.print(table)
    if not ok:
        raise typer.Exit(3)
