"""`cdc chaos`: a bounded fault suite on the running stack (operate/chaos)."""
from __future__ import annotations

import typer
from rich.console import Console

from cli import stack_env

out = Console()


def chaos(faults: int = typer.Option(50, "--faults", help="Faults to inject (the run stops after them)."),
          seconds: float = typer.Option(1800.0, "--seconds", help="Longest fault phase; fewer faults if it ends first."),
          seed: int = typer.Option(1, "--seed", help="Seed of the draw of faults, hold times and load."),
          settle: float = typer.Option(600.0, "--settle", help="Seconds allowed after the faults for every saga "
                                                               "to end and every replica to converge."),
          kinds: str = typer.Option("", "--kinds", help="Comma-separated fault kinds to draw from (default: all): "
                                                        "broker, connect, replication-worker, saga-worker, "
                                                        "coordinator, database."),
          pace: float = typer.Option(1.0, "--pace", help="Seconds between two writes of the load.")) -> None:
    """Mixed replication and saga load while random faults are injected (kill -9 of the broker, a
    Connect worker, a replication worker, a saga worker, the coordinator; a service database
    stopped and started); then check the invariants. Exit 1 on a violation."""
    from operate.chaos.faults import KINDS
    from operate.chaos.run import ChaosSettings, print_report, run

    chosen = tuple(k.strip() for k in kinds.split(",") if k.strip()) or tuple(KINDS)
    unknown = [k for k in chosen if k not in KINDS]
    if unknown:
        Console(stderr=True).print(f"[red]refused:[/red] unknown fault kind(s) {', '.join(unknown)}; "
                                   f"known: {', '.join(KINDS)}")
        raise typer.Exit(2)
    report = run(ChaosSettings(faults=faults, seconds=seconds, seed=seed, settle=settle, kinds=chosen, pace=pace),
                 stack_env.load(), out)
    print_report(report, out)
    if report.violations:
        raise typer.Exit(1)
