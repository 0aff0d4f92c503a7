"""`up`, `down`, `status`, `wipe` of the local stack. Idempotent: `up` twice leaves one stack,
`down` stops what `up` started (by pid) and keeps every byte of data."""
from __future__ import annotations

import shutil
from dataclasses import dataclass

from alembic.util.exc import CommandError
from rich.console import Console

from services import migrations
from services.registry import current
from stack import components, jars, kafka, postgres, roles
from stack.envfile import connect_worker_env, render, stack_env
from stack.processes import StackError, check_ports_free, stop
from stack.secrets import kafka_passwords, load_or_create, read_env_file, secret_name, write_private
from stack.settings import StackSettings

console = Console(stderr=True, log_path=False)


def _free_ports_needed(s: StackSettings) -> dict[int, str]:
    """Ports of the components that are not running yet (a running one holds its own port)."""
    names = s.port_env_names()
    needed: dict[int, str] = {}
    for c in current().components:
        if not components.running(s, c):
            port = s.component_ports[c.name]
            needed[port] = names[port]
    for svc in current().services:
        if not postgres.is_running(s, svc):
            port = s.pg_ports[svc.name]
            needed[port] = names[port]
    if not kafka.broker_running(s):
        needed[s.kafka_port] = names[s.kafka_port]
        needed[s.controller_port] = names[s.controller_port]
    for worker in s.connect_worker_names():
        if not kafka.connect_running(s, worker):
            port = s.connect_worker_port(worker)
            needed[port] = names[port]
    return needed


def up(s: StackSettings) -> None:
    s.run_dir.mkdir(parents=True, exist_ok=True)
    check_ports_free(_free_ports_needed(s))
    secrets = load_or_create(s.secrets_file)
    with console.status("resolving jars (first time only)"):
        jars.resolve(s.jars_dir, log=lambda m: console.log(m))
    postgres.find_bin_dir()
    postgres.prepare_root(s)
    env = stack_env(s, secrets)
    for svc in current().services:
        with console.status(f"PostgreSQL {svc.name} on port {s.pg_ports[svc.name]}"):
            postgres.ensure_cluster(s, svc, secrets[secret_name(svc, "superuser")])
            started = False
            if not postgres.is_running(s, svc):
                postgres.start(s, svc)
                started = True
            roles.bootstrap(svc, s.pg_ports[svc.name], secrets)
            try:
                migrations.upgrade(svc, env[f"{svc.env_prefix}_DATABASE_URL"])
            except CommandError as exc:  # e.g. a revision of an older layout that no chain knows
                raise StackError(f"migrating {svc.name} failed: {exc}. A stack made by an older version of the "
                                 f"project cannot be migrated: `make wipe` deletes it (all its data).") from None
        console.log(f"postgres {svc.name:<12} {'started' if started else 'running'}  127.0.0.1:{s.pg_ports[svc.name]}")
    # services of domains enabled by an earlier `up` keep their lines: their clusters still run
    write_private(s.env_file, render({**read_env_file(s.env_file), **env}))
    with console.status(f"Kafka broker on {s.kafka_bootstrap}"):
        kafka.format_storage(s, secrets)
        started = kafka.start_broker(s, secrets)
    console.log(f"kafka {'started' if started else 'running'}  {s.kafka_bootstrap}")
    with console.status("broker principals and ACLs"):
        ensure_access(s, secrets)  # before Connect starts: it needs its user and ACLs
    worker_env_file = s.etc_dir / "connect-worker.env"
    worker_env = {**read_env_file(worker_env_file), **connect_worker_env(s, secrets, roles.system_ids(s, secrets))}
    if read_env_file(worker_env_file) != worker_env:
        # Connect resolves ${env:...} from its own environment: a newly enabled service needs a restart
        for worker in _connect_pid_names(s):
            with console.status(f"restarting Kafka Connect ({worker}): services were added"):
                stop(kafka.pid_file(s, worker), timeout=90)
    write_private(worker_env_file, render(worker_env))
    for worker in s.connect_worker_names():
        port = s.connect_worker_port(worker)
        with console.status(f"Kafka Connect {worker} on 127.0.0.1:{port} (plugin scan takes a while)"):
            started = kafka.start_connect(s, worker_env, worker)
        console.log(f"{worker} {'started' if started else 'running'}  http://127.0.0.1:{port}")
    components.start_all(s, log=console.log)
    console.log(f"stack up; its addresses: {s.env_file} (or `make env`)")


def ensure_access(s: StackSettings, secrets: dict[str, str]) -> None:
    """Every principal's SCRAM user and exactly the ACLs the declarations give them (idempotent)."""
    from confluent_kafka import KafkaException

    from connectors import acls
    from stack.kafka_client import ADMIN, access

    env = stack_env(s, secrets)
    admin = access(env, ADMIN)
    try:
        acls.upsert_users(admin, {p: pw for p, pw in kafka_passwords(secrets).items() if p != ADMIN})
    except KafkaException as exc:
        raise StackError(f"the broker refused the admin ({exc}). A stack made before the broker required "
                         f"credentials has no admin user: `make wipe` deletes it (all its data).") from None
    added, removed = acls.sync(admin, acls.wanted())
    if added or removed:
        console.log(f"broker ACLs: {added} added, {removed} removed")


def down(s: StackSettings) -> None:
    # Workers first (they would only retry against a stopping stack), then Connect: it holds
    # the replication connections and flushes its offsets on SIGTERM.
    for pid_file in sorted(s.pids_dir.glob("worker-*.pid")):
        if stop(pid_file, timeout=30):
            console.log(f"{pid_file.stem} stopped")
    components.stop_all(s, log=console.log)
    for name in (*_connect_pid_names(s), "kafka"):
        was = stop(kafka.pid_file(s, name), timeout=90)
        console.log(f"{name} {'stopped' if was else 'not running'}")
    # every cluster of the run folder, also those of domains no longer enabled
    for name in postgres.clusters(s):
        was = postgres.stop_dir(s.pg_root / name)
        console.log(f"postgres {name} {'stopped' if was else 'not running'}")


def _connect_pid_names(s: StackSettings) -> list[str]:
    """Every Connect worker with a pid file, also those of a larger CDC_CONNECT_WORKERS than now."""
    extra = sorted(p.stem for p in s.pids_dir.glob("connect-*.pid"))
    return ["connect", *extra]


def wipe(s: StackSettings) -> None:
    """Delete all data of this stack at once: PostgreSQL clusters (and so their slots),
    Kafka's log (and so Connect's offsets). Never one without the other."""
    down(s)
    postgres.wipe(s)
    shutil.rmtree(s.run_dir, ignore_errors=True)
    console.log(f"wiped {s.run_dir}")


@dataclass
class ComponentStatus:
    name: str
    address: str
    running: bool


def status(s: StackSettings) -> list[ComponentStatus]:
    rows = [ComponentStatus(f"postgres {svc.name}", f"127.0.0.1:{s.pg_ports[svc.name]}",
                            postgres.is_running(s, svc)) for svc in current().services]
    rows.append(ComponentStatus("kafka", s.kafka_bootstrap, kafka.broker_running(s)))
    for worker in s.connect_worker_names():
        rows.append(ComponentStatus(worker, f"http://127.0.0.1:{s.connect_worker_port(worker)}",
                                    kafka.connect_running(s, worker) and kafka.connect_healthy(s, worker)))
    rows += [ComponentStatus(c.name, components.url(s, c), components.running(s, c)) for c in current().components]
    return rows


def env_lines(s: StackSettings) -> str:
    if not s.env_file.exists():
        raise SystemExit(f"no stack at {s.run_dir}: run `make up` first")
    return s.env_file.read_text()


def secrets(s: StackSettings) -> dict[str, str]:
    return read_env_file(s.secrets_file)
