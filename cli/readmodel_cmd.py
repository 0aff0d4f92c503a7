"""`cdc readmodel worker|rebuild|show NAME`: a read model's worker, its rebuild by replay, its figures."""
from __future__ import annotations

import sys
import time

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from cli import stack_env
from services.registry import current
from stack.kafka_client import ADMIN, access
from stack.settings import StackSettings

app = typer.Typer(help="Read models: state folded from topics by Faust tables into a service's database.",
                  no_args_is_help=True)
out = Console(width=160)
err = Console(stderr=True)


def _model(name: str):
    try:
        return current().read_model(name)
    except KeyError as exc:
        err.print(f"[red]refused:[/red] {exc.args[0]}")
        raise typer.Exit(2) from None


def _url(env: dict[str, str], service: str, kind: str) -> str:
    return env[f"{current().service(service).env_prefix}_{kind}_URL"]


@app.command()
def worker(name: str = typer.Argument(..., help="Read model name (a domain's read_models)."),
           web_port: int = typer.Option(0, "--web-port", help="Port of /healthz and /metrics (default: derived)."),
           session_timeout: float = typer.Option(30.0, "--session-timeout", help="Kafka session timeout, seconds."),
           batch_max: int = typer.Option(2000, "--batch-max", help="Largest batch written in one transaction."),
           stall_restart: float = typer.Option(60.0, "--stall-restart", envvar="CDC_WORKER_STALL_RESTART"),
           loglevel: str = typer.Option("info", "--loglevel")) -> None:
    """Run the worker of one read model in the foreground."""
    from cli.workers_cmd import _web_port
    from streams.read_models.runtime import ReadModelSettings
    from streams.read_models.worker import run

    model = _model(name)
    env = stack_env.load()
    port = web_port or _web_port(StackSettings.from_env(), model.worker_name)
    ws = ReadModelSettings(kafka=access(env, model.group_id), dsn=_url(env, model.service, "DATABASE"), web_port=port,
                           session_timeout=session_timeout, batch_max=batch_max, stall_restart=stall_restart)
    sys.argv = [sys.argv[0], "worker"]
    run(name, ws, loglevel=loglevel)


def figures_table(model, url: str, limit: int = 20) -> Table:
    with psycopg.connect(url) as conn:
        columns, rows = model.store.figures(conn, limit)
    table = Table(*columns, title=f"read model {model.name} ({model.service})")
    for row in rows:
        table.add_row(*("-" if v is None else str(v) for v in row))
    return table


@app.command()
def show(name: str = typer.Argument(...), limit: int = typer.Option(20, "--limit")) -> None:
    """The read model's figures (per entity)."""
    model = _model(name)
    out.print(figures_table(model, _url(stack_env.load(), model.service, "OBSERVER"), limit))


@app.command()
def rebuild(name: str = typer.Argument(...),
            timeout: float = typer.Option(600.0, "--timeout", help="Seconds to wait for the replay to catch up."),
            backfill: bool = typer.Option(False, "--backfill", help="Refill every source the model names a table "
                                          "for from that table, even if its topic still starts at offset 0.")) -> None:
    """Wipe the read model and rebuild it from its sources: stops its background worker, resets its
    group to offset 0 (a source whose start retention deleted is refilled from its table by an
    incremental snapshot instead), empties its changelogs and tables, starts the worker, waits until
    it has caught up, and compares the figures before and after."""
    from cli.workers_cmd import background_worker, launch, stop_one
    from streams.read_models import rebuild as rb

    model = _model(name)
    env, settings = stack_env.load(), StackSettings.from_env()
    kafka = access(env, ADMIN)
    observer, owner = _url(env, model.service, "OBSERVER"), _url(env, model.service, "DATABASE")
    try:
        refill = rb.plan(kafka, model, backfill_all=backfill)
        before = rb.digest(observer, model)
        if stop_one(settings, model.worker_name):
            out.print(f"worker {model.worker_name} stopped")
        starts = rb.end_offsets(kafka, model, refill) if refill else {}   # before the cut: see rebuild.py
        with out.status("cutting the refilled tables (waiting for the transactions in flight)"):
            cuts = [rb.cut_source(env, model, topic) for topic in refill]
        with out.status(f"moving {model.group_id} to where the replay starts"):
            rb.reset_offsets(kafka, model, starts=starts)
        rb.empty_changelogs(kafka, model)
        rb.wipe(owner, model, cuts)
        for cut in cuts:
            table = model.backfills[cut.topic]
            signal = rb.request_backfill(env, model, cut)
            out.print(f"{cut.topic}: refilled from {table.service}.{table.table} ({cut.rows:,} rows with "
                      f"{cut.key_column} <= {cut.cut}, snapshot {signal}); the stream from its end on")
        replayed = [t for t in model.sources if t not in refill]
        out.print(f"wiped {', '.join(model.store.tables)} and the changelogs; replaying "
                  f"{', '.join(replayed) or 'nothing'} from offset 0")
        started = time.monotonic()
        launch(settings, background_worker(settings, model.worker_name))
        for cut in cuts:
            with out.status(f"snapshot of {cut.topic}") as status:
                def progress(n: int, c: rb.Cut = cut, s=status) -> None:
                    s.update(f"snapshot of {c.topic}: {n:,} of {c.rows:,} rows")
                rb.snapshot_arrived(kafka, cut, starts, timeout, progress)
    except rb.RebuildRefused as exc:
        err.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(2) from None
    ends = rb.end_offsets(kafka, model)
    with out.status("replaying") as status:
        while (left := rb.behind(kafka, model, ends)) > 0:
            if time.monotonic() - started > timeout:
                err.print(f"[red]the replay did not catch up within {timeout:.0f}s ({left} messages left)[/red]")
                raise typer.Exit(1)
            status.update(f"replaying: {left:,} messages left")
            time.sleep(0.5)
    after = rb.digest(observer, model)
    table = Table("table", "rows before", "rows after", "figures", title=f"rebuild of {model.name} "
                  f"({time.monotonic() - started:.1f} s)")
    for t in model.store.tables:
        table.add_row(t, str(before[t][0]), str(after[t][0]),
                      "[green]identical[/green]" if before[t] == after[t] else "[yellow]changed[/yellow]")
    out.print(table)
    if before != after:
        out.print("[yellow]figures changed: new source messages arrived during the rebuild, or the model "
                  "was out of date before it[/yellow]")
