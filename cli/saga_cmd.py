"""`cdc saga retry|resolve`: a person takes over a FAILED (quarantined) saga, orchestrated or
choreographed.

retry: once the cause is fixed (a limit raised, a participant repaired), send its failed
compensation again from attempt 1; the orchestrator carries on from there. resolve: it was
handled outside the saga; close it as RESOLVED. Both need --why; both are written to the saga's
timeline and to the operator's audit topic (who, when, what, why)."""
from __future__ import annotations

import getpass

import typer
from rich.console import Console

from cli import stack_env
from operate.sagas import take_over
from streams.sagas.machine import NotRetryable

app = typer.Typer(help="Take over a FAILED saga: retry its compensation, or resolve it by hand (recorded).",
                  no_args_is_help=True)
out = Console(width=160)
SAGA = typer.Argument(..., help="Saga id, or the business key that started it (e.g. an order id).")
WHY = typer.Option(..., "--why", help="Why (recorded with who and when).")
BY = typer.Option(None, "--by", help="Who (default: your login name).")
SCALE = typer.Option(1.0, "--timeout-scale", envvar="CDC_SAGA_TIMEOUT_SCALE",
                     help="The orchestrator's step-timeout scale, for the resent command's deadline.")


def _act(saga: str, action: str, why: str, by: str | None, scale: float) -> None:
    who = by or getpass.getuser()
    try:
        d = take_over(stack_env.load(), saga, action, who, why, scale)
    except NotRetryable as exc:
        out.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(1) from None
    out.print(f"saga {d.saga_id}: {d.before} -> {d.after}, {d.detail} (by {who}: {why}); "
              f"follow it with `cdc observe saga {d.saga_id}`")


@app.command("retry")
def retry(saga: str = SAGA, why: str = WHY, by: str | None = BY, timeout_scale: float = SCALE) -> None:
    """Send a FAILED saga's failed compensation again (after its cause is fixed)."""
    _act(saga, "retry", why, by, timeout_scale)


@app.command("resolve")
def resolve(saga: str = SAGA, why: str = WHY, by: str | None = BY) -> None:
    """Close a FAILED saga as handled by hand (RESOLVED)."""
    _act(saga, "resolve", why, by, 1.0)
