"""`cdc deploy` and `cdc connectors status|delete`."""
from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from cli import stack_env
from connectors import acls, configs
from connectors.connect_api import ConnectClient, ConnectError, ConnectorState
from connectors.deploy import DeployRefused
from connectors.deploy import deploy as run_deploy
from services.registry import current
from stack.kafka_client import ADMIN, access
from stack.roles import dsn
from stack.secrets import read_env_file, secret_name
from stack.settings import StackSettings

app = typer.Typer(help="Connector status and removal.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
SECRET_VALUE = re.compile(r"password|secret", re.I)


def _states_table(states: list[ConnectorState]) -> Table:
    table = Table("connector", "state", "tasks")
    for s in states:
        colour = "green" if s.running else ("red" if s.failed else "yellow")
        table.add_row(s.name, f"[{colour}]{s.connector}[/{colour}]", ", ".join(s.tasks) or "-")
    return table


def deploy(dry_run: bool, only: list[str] | None, config_dir: Path = configs.CONFIG_DIR) -> None:
    try:
        conns = configs.load_all(config_dir, only=only or None)
    except (ValueError, FileNotFoundError) as exc:
        err.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(2) from None
    if dry_run:
        for conn in conns:
            shown = {k: ("***" if SECRET_VALUE.search(k) and not v.startswith("${") else v) for k, v in conn.config.items()}
            out.print(f"[bold]{conn.name}[/bold]  topics: {', '.join(conn.all_topics())}")
            out.print_json(json.dumps(shown))
        return
    env = stack_env.load()
    admin = access(env, ADMIN)
    if not only:  # the whole stack's declarations: its ACLs follow them (users and passwords: `make up`)
        added, removed = acls.sync(admin, acls.wanted())
        if added or removed:
            out.print(f"broker ACLs: {added} added, {removed} removed")
    try:
        result = run_deploy(conns, env["CONNECT_URL"], admin)
    except DeployRefused as exc:
        err.print(f"[red]refused by {exc.stage}; nothing deployed:[/red]")
        for line in exc.errors:
            err.print(f"  - {line}")
        raise typer.Exit(2) from None
    except ConnectError as exc:
        err.print(f"[red]deploy failed:[/red] {exc}")
        raise typer.Exit(1) from None
    for verb, names in (("created", result.created), ("updated", result.updated), ("unchanged", result.unchanged)):
        if names:
            out.print(f"{verb}: {', '.join(names)}")
    if result.topics_created:
        out.print(f"topics created: {len(result.topics_created)}")
    out.print(_states_table(result.states))


@app.command()
def status() -> None:
    """State of every deployed connector and its tasks."""
    client = ConnectClient(stack_env.load()["CONNECT_URL"])
    states = [client.status(n) for n in client.names()]
    out.print(_states_table(states))
    if not all(s.running for s in states):
        raise typer.Exit(3)


@app.command()
def delete(name: str, drop_slot: bool = typer.Option(False, "--drop-slot",
                                                     help="Also drop the replication slot (its unread WAL is lost).")) -> None:
    """Remove a connector. Its replication slot stays (and pins WAL) unless --drop-slot."""
    conn = next((c for c in configs.load_all() if c.name == name), None)
    client = ConnectClient(stack_env.load()["CONNECT_URL"])
    client.delete(name)
    out.print(f"deleted connector {name}")
    if drop_slot:
        if conn is None:
            err.print(f"[red]no connector file for {name}: cannot tell which slot to drop[/red]")
            raise typer.Exit(2)
        _drop_slot(conn.topic_prefix, conn.config["slot.name"])


def _drop_slot(service_name: str, slot: str) -> None:
    settings = StackSettings.from_env()
    svc = current().service(service_name)
    su = dsn("postgres", read_env_file(settings.secrets_file)[secret_name(svc, "superuser")],
             settings.pg_ports[svc.name], svc.database)
    with psycopg.connect(su, autocommit=True) as conn:
        row = conn.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
        if row is None:
            out.print(f"slot {slot} does not exist")
            return
        if row[0] is not None:  # Connect may still be closing the replication connection
            conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    out.print(f"dropped replication slot {slot}")
