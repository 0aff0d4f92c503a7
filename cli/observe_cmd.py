"""`cdc observe [--watch]`: every replication pair, converged or not (exit 1 when not)."""
from __future__ import annotations

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from cli import stack_env
from observe.replication import PairReport, wait_converged
from observe.slots import DEFAULT_MAX_LAG_BYTES, SlotReport, check_slots
from streams import spec as spec_mod

out = Console(width=160)


def _lsn(v: int | None) -> str:
    return "-" if v is None else f"{v >> 32:X}/{v & 0xFFFFFFFF:X}"


def _table(reports: list[PairReport]) -> Table:
    table = Table("pair", "source rows", "replica rows", "checksum", "source WAL / confirmed", "applied",
                  "msg lag", "s lag", "converged", title="replication")
    for r in reports:
        table.add_row(r.pair, str(r.source_rows), str(r.replica_rows),
                      "[green]match[/green]" if r.checksums_match else "[red]differs[/red]",
                      f"{_lsn(r.start_lsn)} / {_lsn(r.confirmed_lsn)}", _lsn(r.applied_lsn), str(r.consumer_lag),
                      "-" if r.lag_seconds is None else f"{r.lag_seconds:.1f}",
                      "[green]yes[/green]" if r.converged else "[yellow]no[/yellow]")
    return table


def _bytes(v: int | None) -> str:
    if v is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if v < 1024 or unit == "GB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024  # type: ignore[assignment]
    return str(v)


def _slots_table(reports: list[SlotReport]) -> Table:
    table = Table("connector", "slot", "active", "WAL retained", "unconfirmed", "s since heartbeat",
                  "restart / confirmed / offset", "problems", title="replication slots")
    for r in reports:
        table.add_row(r.connector, r.slot, "-" if r.active is None else ("yes" if r.active else "[yellow]no[/yellow]"),
                      _bytes(r.retained_bytes), _bytes(r.unconfirmed_bytes),
                      "-" if r.heartbeat_age_s is None else f"{r.heartbeat_age_s:.1f}",
                      f"{_lsn(r.restart_lsn)} / {_lsn(r.confirmed_lsn)} / {_lsn(r.offset_lsn)}",
                      "[red]" + "; ".join(r.problems) + "[/red]" if r.problems else "[green]none[/green]")
    return table


app = typer.Typer(help="Observe replication (default) and sagas.", invoke_without_command=True)


@app.callback()
def observe(ctx: typer.Context,
            watch: bool = typer.Option(False, "--watch", help="Show the table live while waiting."),
            timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for convergence."),
            pair: list[str] = typer.Option(None, "--pair", help="Only these pairs (and their sources' slots)."),
            max_slot_lag_bytes: int = typer.Option(DEFAULT_MAX_LAG_BYTES, "--max-slot-lag-bytes",
                                                   help="WAL a slot may retain before observe fails.")) -> None:
    """Replication pairs: rows, checksums, lag. Waits (up to --timeout) for every pair to converge
    against the source WAL position taken at the start; exit 1 if one has not. Then every
    connector's replication slot: WAL retained and unconfirmed, seconds since the connector's
    heartbeat; exit 1 if a slot is missing, recreated, lost its WAL or retains more than
    --max-slot-lag-bytes.
    `observe sagas` and `observe saga ID` show the sagas."""
    if ctx.invoked_subcommand is not None:
        return
    env = stack_env.load()
    pairs = [p for p in spec_mod.load().pairs if not pair or p.name in pair]
    if watch:
        with Live(console=out, refresh_per_second=4) as live:
            reports = wait_converged(pairs, env, timeout, on_report=lambda r: live.update(_table(r)))
    else:
        with out.status("waiting for convergence"):
            reports = wait_converged(pairs, env, timeout)
        out.print(_table(reports))
    slots = check_slots(env, max_slot_lag_bytes, {p.source.service for p in pairs} if pair else None)
    out.print(_slots_table(slots))
    for r in slots:  # one unwrapped line each, for logs and scripts
        for problem in r.problems:
            out.print(f"slot {r.slot} ({r.connector}): {problem}", soft_wrap=True, markup=False)
    if not all(r.converged for r in reports) or any(s.problems for s in slots):
        raise typer.Exit(1)


def backfill(pair: str = typer.Argument(..., help="Replication pair to refill from its source."),
             wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until the pair has converged."),
             timeout: float = typer.Option(300.0, "--timeout")) -> None:
    """Refill a replica (added later, or wiped) through Debezium's incremental snapshot."""
    from streams.backfill import request_snapshot

    env = stack_env.load()
    p = spec_mod.load().pair(pair)
    signal = request_snapshot(p, env)
    out.print(f"incremental snapshot of {p.source.service}.{p.source.table} requested (signal {signal})")
    if wait:
        with out.status("waiting for the replica to converge"):
            reports = wait_converged([p], env, timeout)
        out.print(_table(reports))
        if not reports[0].converged:
            raise typer.Exit(1)


@app.command("sagas")
def sagas(stuck_after: float = typer.Option(60.0, "--stuck-after", help="Seconds without progress: stuck."),
          max_failed: int = typer.Option(0, "--max-failed", help="Alert threshold: FAILED sagas tolerated."),
          saga_type: str = typer.Option(None, "--type", help="List the instances of this saga type (e.g. place-order)."),
          state: str = typer.Option(None, "--state", help="List the instances in this state (e.g. COMPENSATING)."),
          older_than: float = typer.Option(None, "--older-than", help="List the instances started more than this "
                                                                      "many seconds ago.")) -> None:
    """Saga instances by state, stuck ones (stalest first) and quarantined (FAILED) ones; exit 1 if any
    saga is stuck or more than --max-failed are FAILED. With --type, --state or --older-than: the
    matching instances too, stuck ones first (the console's sagas filter)."""
    from observe.sagas import instances, summary

    url = stack_env.load()["ORCHESTRATOR_OBSERVER_URL"]
    s = summary(url, stuck_after)
    if saga_type or state or older_than:
        listed = Table("saga", "type", "key", "state", "step", "phase", "attempt", "age", "stuck",
                       title="instances (stuck first)")
        for r in instances(url, saga_type, state, older_than, stuck_after):
            listed.add_row(r.id, r.saga_type, r.business_key or "", r.state, str(r.step), r.phase, str(r.attempt),
                           f"{r.age_s:.0f} s", "yes" if r.stuck else "")
        out.print(listed)
    table = Table("state", "sagas", title="sagas")
    for state, count in s.by_state.items():
        table.add_row(state, str(count))
    out.print(table)
    if s.deadlines:
        missed = Table("cause", "deadlines missed", "sagas", title="step deadlines missed")
        for cause, (events, count) in sorted(s.deadlines.items()):
            missed.add_row(cause, str(events), str(count))
        out.print(missed)
    if s.stuck:
        stuck = Table("saga", "state", "step", "phase", "attempt", "last change", title="stuck (stalest first)")
        for row in s.stuck:
            stuck.add_row(*(str(v) for v in row))
        out.print(stuck)
    if s.failed:
        failed = Table("saga", "reason", "when", title="FAILED (quarantined)")
        for row in s.failed:
            failed.add_row(*(str(v) for v in row))
        out.print(failed)
    if s.stuck or s.by_state.get("FAILED", 0) > max_failed:
        raise typer.Exit(1)


@app.command("saga")
def saga(saga_id: str = typer.Argument(..., help="Saga id, or the business key that started it (e.g. an order id).")) -> None:
    """The step timeline of one saga: what was sent, replied, compensated, and when."""
    from observe.sagas import timeline

    events = timeline(stack_env.load()["ORCHESTRATOR_OBSERVER_URL"], saga_id)
    if not events:
        out.print(f"no saga {saga_id}")
        raise typer.Exit(1)
    table = Table("at", "event", "step", "action", "detail", title=f"saga {saga_id}")
    for at, kind, step, action, detail in events:
        table.add_row(at.strftime("%H:%M:%S.%f")[:-3], kind, step or "", action or "", detail or "")
    out.print(table)


@app.command("readmodels")
def readmodels(limit: int = typer.Option(20, "--limit", help="Rows per read model.")) -> None:
    """The figures of every enabled read model (e.g. clicks per short link), and its worker's lag."""
    from cli.readmodel_cmd import figures_table
    from services.registry import current
    from stack.kafka_client import OBSERVER, access
    from streams.read_models.rebuild import behind, end_offsets

    env = stack_env.load()
    kafka = access(env, OBSERVER)
    for model in current().read_models:
        url = env[f"{current().service(model.service).env_prefix}_OBSERVER_URL"]
        out.print(figures_table(model, url, limit))
        out.print(f"{model.group_id}: {behind(kafka, model, end_offsets(kafka, model)):,} messages not yet folded")
