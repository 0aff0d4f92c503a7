"""Entry point of the `cdc` command. Each verb is a thin call into the module that does the job."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli import (
    chaos_cmd,
    connectors_cmd,
    demo_cmd,
    dlq_cmd,
    observe_cmd,
    readmodel_cmd,
    saga_cmd,
    stack_env,
    topics_cmd,
    workers_cmd,
)
from connectors import configs
from stack import launcher
from stack.processes import StackError
from stack.settings import StackSettings

app = typer.Typer(help="Change-data-capture pipeline: local stack, connectors, workers, observation.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(connectors_cmd.app, name="connectors")
app.add_typer(workers_cmd.app, name="workers")
app.command("worker")(workers_cmd.worker)
app.command("saga-worker")(workers_cmd.saga_worker)
app.add_typer(observe_cmd.app, name="observe")
app.add_typer(topics_cmd.app, name="topics")
app.add_typer(readmodel_cmd.app, name="readmodel")
app.add_typer(dlq_cmd.app, name="dlq")
app.add_typer(saga_cmd.app, name="saga")
app.command("backfill")(observe_cmd.backfill)
app.command("demo")(demo_cmd.demo)
app.command("chaos")(chaos_cmd.chaos)
out = Console()


def _settings() -> StackSettings:
    return StackSettings.from_env()


@app.command()
def up() -> None:
    """Start PostgreSQL per service, Kafka and Kafka Connect; run migrations. Idempotent."""
    try:
        launcher.up(_settings())
    except StackError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


@app.command()
def down() -> None:
    """Stop every process `up` started; keep all data."""
    launcher.down(_settings())


@app.command()
def wipe() -> None:
    """Stop the stack and delete all its data (databases with their slots, Kafka with Connect's offsets)."""
    launcher.wipe(_settings())


@app.command()
def status() -> None:
    """Which components run, and where."""
    rows = launcher.status(_settings())
    table = Table("component", "address", "state")
    for row in rows:
        table.add_row(row.name, row.address, "[green]running[/green]" if row.running else "[red]stopped[/red]")
    out.print(table)
    if not all(r.running for r in rows):
        raise typer.Exit(3)


@app.command()
def env() -> None:
    """Print the stack's addresses as KEY=value lines."""
    print(launcher.env_lines(_settings()), end="")


db_app = typer.Typer(help="Stop or start one service's PostgreSQL (e.g. to see the pipeline ride out an outage).",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("stop")
def db_stop(service: str) -> None:
    """Stop one service database (fast shutdown); its data stays."""
    from services.registry import current
    from stack import postgres

    postgres.stop(_settings(), current().service(service))
    out.print(f"postgres {service} stopped")


@db_app.command("start")
def db_start(service: str) -> None:
    """Start one service database again."""
    from services.registry import current
    from stack import postgres

    settings, svc = _settings(), current().service(service)
    if not postgres.is_running(settings, svc):
        postgres.start(settings, svc)
    out.print(f"postgres {service} running")


@app.command()
def migrate() -> None:
    """Run every service's migrations against the databases in the environment (for docker compose;
    `up` already does this for the native stack)."""
    from services import migrations
    from services.registry import current

    env = stack_env.load()
    for svc in current().services:
        migrations.upgrade(svc, env[f"{svc.env_prefix}_DATABASE_URL"])
        out.print(f"migrated {svc.name}")


compose_app = typer.Typer(help="The stack in Docker containers (docs/docker.md). Without a verb: render "
                          "docker-compose.yml, docker-compose.host.yml and stack/docker/example.env.")
app.add_typer(compose_app, name="compose")


@compose_app.callback(invoke_without_command=True)
def compose(ctx: typer.Context) -> None:
    """Write the compose files from the enabled domains' services (without a verb)."""
    if ctx.invoked_subcommand is not None:
        return
    from stack import compose as compose_mod

    for path in compose_mod.write():
        out.print(f"wrote {path}")


def _compose_call(fn, *args) -> None:
    try:
        fn(_settings(), *args, log=Console(stderr=True).log)
    except StackError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


@compose_app.command("build")
def compose_build() -> None:
    """Build the images (base image, PostgreSQL, Kafka, Connect with the native stack's jars)."""
    from stack import images

    def build(s: StackSettings, log) -> None:
        images.build(s.jars_dir, s.run_dir / "docker-build", log=log)

    _compose_call(build)


@compose_app.command("up")
def compose_up() -> None:
    """Start the compose stack for CDC_STACK_DIR on its ports, wait until healthy, migrate, give the
    broker's users their ACLs, write the run folder's env file (`make env`). Idempotent."""
    from stack import compose_stack

    _compose_call(compose_stack.up)


@compose_app.command("down")
def compose_down(volumes: bool = typer.Option(False, "--volumes", "-v",
                                              help="Also delete every volume and the run folder."))-> None:
    """Stop the workers, the components and the containers (--volumes: and delete all data)."""
    from stack import compose_stack

    _compose_call(compose_stack.down, volumes)


@app.command("console")
def console(port: int = typer.Option(0, "--port", help="Port on 127.0.0.1 (default: CONSOLE_URL's, CDC_CONSOLE_PORT)."),
            background: bool = typer.Option(False, "--background", help="Start it in the background (idempotent) "
                                                                       "and return once it answers; `make down` "
                                                                       "and `make workers-stop` stop it.")) -> None:
    """Serve the web console: the data's path, sagas, dead letters. Its actions need CONSOLE_TOKEN (`make env`)."""
    env, settings = stack_env.load(), _settings()
    port = port or settings.console_port
    if background:
        _console_in_background(settings, port)
        return
    from console.server import serve

    out.print(f"console on http://127.0.0.1:{port} (Ctrl-C stops it)")
    serve(env, env.get("CONSOLE_TOKEN", ""), port)


def _console_in_background(settings: StackSettings, port: int) -> None:
    import sys

    import httpx

    from stack.processes import read_pid, spawn, wait_until

    # a worker-*.pid: stopped with the workers by `cdc down` and `cdc workers stop`
    pid_file, log = settings.pids_dir / "worker-console.pid", settings.logs_dir / "console.log"
    if not read_pid(pid_file):
        spawn([sys.executable, "-m", "cli", "console", "--port", str(port)], log, pid_file)

    def answers() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/sagas?refresh=0", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until("the console", answers, timeout=90, alive=lambda: read_pid(pid_file) is not None, log_file=log)
    out.print(f"console on http://127.0.0.1:{port} (its actions need CONSOLE_TOKEN: `make env`)")


@app.command("deploy")
def deploy(dry_run: bool = typer.Option(False, "--dry-run", help="Show the resolved configs; deploy nothing."),
           only: list[str] = typer.Option(None, "--only", help="Deploy only these connectors."),
           config_dir: Path = typer.Option(configs.CONFIG_DIR, "--config-dir",
                                           help="Folder with base.json and one <service>.json per connector.")) -> None:
    """Check, validate and deploy every connector config (idempotent), then wait until RUNNING."""
    connectors_cmd.deploy(dry_run=dry_run, only=only, config_dir=config_dir)



@app.command("bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context) -> None:
    """Benchmarks on the running stack: source ceiling, Debezium capture, sink race and end-to-end
    latency vs the JDBC sink, worker memory over 1M rows, saga throughput/latency in both modes
    (options: --phases, --changes, --runs, --rates, --memory-rows, --saga-rates, --out; see
    `python -m bench.run --help`); writes bench-results/<time>/results.md and plots."""
    from bench.run import main as run_bench

    run_bench(list(ctx.args))


if __name__ == "__main__":
    app()
