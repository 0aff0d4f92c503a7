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
from connectors.connect_api import ConnectClient, ConnectError, ConnectorState, cluster_url
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


def _states_table(states: list[ConnectorState], watched: dict | None = None) -> Table:
    """`watched`: what `cdc connectors watch` knows (restarts, last failure), when it runs."""
    table = Table("connector", "state", "tasks", *(("restarts", "last failure") if watched is not None else ()))
    for s in states:
        colour = "green" if s.running else ("red" if s.failed else "yellow")
        extra: tuple[str, ...] = ()
        if watched is not None:
            w = watched.get(s.name, {})
            extra = (str(w.get("restarts", 0)), w.get("last_failure") or "-")
        table.add_row(s.name, f"[{colour}]{s.connector}[/{colour}]", ", ".join(s.tasks) or "-", *extra)
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
        from connectors.replica_identity import problems

        identity = problems(env)
        if identity:
            raise DeployRefused("replica identity check", identity)
        result = run_deploy(conns, cluster_url(env), admin)
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
    """State of every deployed connector and its tasks; with `cdc connectors watch` running (make
    workers), the restarts it made and the last failure it saw."""
    from connectors.supervisor import read_state

    client = ConnectClient(cluster_url(stack_env.load()))
    states = [client.status(n) for n in client.names()]
    watched = read_state(watch_state_file(StackSettings.from_env()))
    out.print(_states_table(states, watched["connectors"] if watched else None))
    if watched is not None:
        import time

        out.print(f"restarts counted by `cdc connectors watch`, as of {time.time() - watched['at']:.0f}s ago")
    else:
        out.print("restarts: not counted (`cdc connectors watch` has not run; `make workers` starts it)")
    if not all(s.running for s in states):
        raise typer.Exit(3)


@app.command()
def delete(name: str, drop_slot: bool = typer.Option(False, "--drop-slot",
                                                     help="Also drop the replication slot (its unread WAL is lost).")) -> None:
    """Remove a connector. Its replication slot stays (and pins WAL) unless --drop-slot."""
    conn = next((c for c in configs.load_all() if c.name == name), None)
    client = ConnectClient(cluster_url(stack_env.load()))
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


def watch_state_file(settings: StackSettings) -> Path:
    return settings.pids_dir / "connectors-watch.json"


@app.command()
def watch(web_port: int = typer.Option(0, "--web-port", help="Port of /healthz and /metrics (default: derived)."),
          interval: float = typer.Option(2.0, "--interval", help="Seconds between status polls."),
          first_delay: float = typer.Option(2.0, "--first-delay", envvar="CDC_CONNECTORS_RESTART_FIRST_DELAY",
                                            help="Back-off before the first restart; doubles per restart."),
          max_delay: float = typer.Option(120.0, "--max-delay", help="Longest back-off between restarts."),
          slots_every: float = typer.Option(10.0, "--slots-every", help="Seconds between slot checks."),
          max_slot_lag_bytes: int = typer.Option(256 * 1024 * 1024, "--max-slot-lag-bytes")) -> None:
    """Supervise the connectors in the foreground: restart failed ones with back-off, count the
    restarts; /healthz and /metrics (restarts, states, slot lag). `make workers` runs it."""
    import logging
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    from connectors.supervisor import Supervisor, write_state
    from observe.slots import check_slots

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env = stack_env.load()
    settings = StackSettings.from_env()
    port = web_port or watch_port(settings)
    client = ConnectClient(cluster_url(env), timeout=10, rebalance_patience=5)
    sup = Supervisor(client, [c.name for c in configs.load_all()], first_delay=first_delay, max_delay=max_delay)
    registry = CollectorRegistry()
    restarts = Gauge("cdc_connector_restarts_total", "Restarts of failed connectors/tasks by the watch",
                     ["connector"], registry=registry)
    running = Gauge("cdc_connector_running", "1 when the connector and its tasks run", ["connector"], registry=registry)
    gauges = {key: Gauge(f"cdc_slot_{key}", doc, ["slot"], registry=registry) for key, doc in (
        ("retained_bytes", "WAL kept on disk for the slot (current WAL - restart_lsn)"),
        ("unconfirmed_bytes", "WAL the connector has not confirmed (current WAL - confirmed_flush_lsn)"),
        ("heartbeat_age_seconds", "Seconds since the connector last wrote its heartbeat"),
        ("problems", "Problems found (missing, recreated, WAL lost, over the threshold)"))}
    slots: list[dict] = []
    alive = {"at": time.monotonic()}

    def loop() -> None:
        next_slots = 0.0
        while True:
            sup.tick()
            for name, w in sup.watched.items():
                restarts.labels(name).set(w.restarts)
                running.labels(name).set(1 if w.state.startswith("RUNNING") and "FAILED" not in w.state else 0)
            if time.monotonic() >= next_slots:
                next_slots = time.monotonic() + slots_every
                try:
                    reports = check_slots(env, max_slot_lag_bytes)
                except Exception as exc:  # noqa: BLE001 - a database away: the next check tries again
                    logging.getLogger(__name__).warning("slot check failed: %s", exc)
                else:
                    slots[:] = [{"slot": r.slot, "connector": r.connector, "retained_bytes": r.retained_bytes,
                                 "unconfirmed_bytes": r.unconfirmed_bytes, "heartbeat_age_s": r.heartbeat_age_s,
                                 "problems": r.problems} for r in reports]
                    for r in reports:
                        for key, value in (("retained_bytes", r.retained_bytes),
                                           ("unconfirmed_bytes", r.unconfirmed_bytes),
                                           ("heartbeat_age_seconds", r.heartbeat_age_s),
                                           ("problems", len(r.problems))):
                            gauges[key].labels(r.slot).set(-1 if value is None else value)
            write_state(watch_state_file(settings), sup, slots)
            alive["at"] = time.monotonic()
            time.sleep(interval)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.startswith("/metrics"):
                body, status, kind = generate_latest(registry), 200, "text/plain; version=0.0.4"
            elif self.path.startswith("/healthz"):
                healthy = time.monotonic() - alive["at"] < max(30.0, 5 * interval)  # the loop goes on
                body = json.dumps({"healthy": healthy, "connectors": sup.snapshot(), "slots": slots}).encode()
                status, kind = (200 if healthy else 503), "application/json"
            else:
                body, status, kind = b"not found", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    threading.Thread(target=loop, name="supervise", daemon=True).start()
    out.print(f"watching {', '.join(sup.names)} (http://127.0.0.1:{port}/healthz)")
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def watch_port(settings: StackSettings) -> int:
    from cli.workers_cmd import WATCH, _web_port

    return _web_port(settings, WATCH)
