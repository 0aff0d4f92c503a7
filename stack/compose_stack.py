"""`cdc compose up/down`: the compose stack behind the same run folder as the native one, so
`make env`, `cdc migrate`, `cdc deploy`, the workers and the demo find it the same way.

`up` keeps the passwords in the run folder's secrets.env (created 0600 at the first `up`; a
./.env of a stack started by hand seeds it), puts the containers on the ports of CDC_PORT_BASE,
runs `up` and waits until every container is healthy, then does what the native `up` does
after its processes start: migrations, the broker's users and ACLs, the env file, the domain
components (host processes, as on native: they stand in for outside providers)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable

from services import migrations
from services.registry import current
from stack import components, compose, images, launcher
from stack.envfile import render, stack_env
from stack.processes import StackError, stop
from stack.secrets import load_or_create, read_env_file, write_private
from stack.settings import REPO_ROOT, StackSettings

MARKER = "compose-project"  # in the run folder: this stack runs in containers, under this project name
HEALTH_TIMEOUT = 300


def project_name(s: StackSettings) -> str:
    """One compose project per run folder: two checkouts' stacks never share containers or volumes."""
    return "cdc-" + hashlib.sha1(str(s.run_dir).encode()).hexdigest()[:10]


def command() -> list[str]:
    """Compose v2 (`docker compose`) where the plugin is installed, else the Python docker-compose 1.29."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise StackError("no Docker Compose: install the compose plugin, or Debian's docker-compose")


def host_network() -> bool:
    """An engine without its bridge network (dockerd --bridge=none) runs containers on the host's."""
    forced = os.environ.get("CDC_COMPOSE_HOST_NETWORK")
    if forced:
        return forced not in ("0", "false", "no")
    return subprocess.run(["docker", "network", "inspect", "bridge"], capture_output=True).returncode != 0


def compose_files() -> list[str]:
    override = compose.HOST_OVERRIDE if host_network() else compose.PORTS_OVERRIDE
    return ["-f", str(compose.COMPOSE_FILE), "-f", str(override)]


def compose_env(s: StackSettings, secrets: dict[str, str]) -> dict[str, str]:
    """What docker-compose.yml's ${...} read: the passwords and this stack's ports."""
    ports = {compose.pg_port_var(svc): str(s.pg_ports[svc.name]) for svc in current().services}
    ports.update(CDC_KAFKA_PORT=str(s.kafka_port), CDC_KAFKA_CONTROLLER_PORT=str(s.controller_port),
                 CDC_CONNECT_PORT=str(s.connect_port))
    return {**os.environ, **secrets, **ports}


def run_compose(s: StackSettings, secrets: dict[str, str], *args: str, check: bool = True,
                capture: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [*command(), "-p", project_name(s), "--project-directory", str(REPO_ROOT), *compose_files(), *args]
    res = subprocess.run(cmd, env=compose_env(s, secrets), capture_output=capture, text=True)
    if check and res.returncode != 0:
        raise StackError(f"`{' '.join(cmd[:2])} ... {' '.join(args)}` failed:\n{res.stdout[-3000:]}{res.stderr[-3000:]}")
    return res


def container_health(s: StackSettings, secrets: dict[str, str]) -> dict[str, str]:
    """service -> health (or state, for a container that is not running)."""
    ids = run_compose(s, secrets, "ps", "-q").stdout.split()
    if not ids:
        return {}
    res = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True)
    health = {}
    for c in json.loads(res.stdout):
        state = c["State"]
        service = c["Config"]["Labels"].get("com.docker.compose.service", c["Name"])
        health[service] = state.get("Health", {}).get("Status", "") if state["Running"] else state["Status"]
    return health


def wait_healthy(s: StackSettings, secrets: dict[str, str], log: Callable[[str], None]) -> None:
    """What `up --wait` does in compose v2, for docker-compose 1.29 too: every container healthy."""
    wanted = {f"{svc.name}-db" for svc in current().services} | {"kafka", "connect"}
    deadline = time.monotonic() + HEALTH_TIMEOUT
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        seen = container_health(s, secrets)
        if all(seen.get(name) == "healthy" for name in wanted):
            return
        failed = {n: h for n, h in seen.items() if h in ("exited", "dead", "unhealthy")}
        if failed:
            break
        time.sleep(1)
    late = {n: seen.get(n, "missing") for n in sorted(wanted) if seen.get(n) != "healthy"}
    logs = run_compose(s, secrets, "logs", "--tail", "30", *late, check=False)
    raise StackError(f"compose stack not healthy after {HEALTH_TIMEOUT}s; expected every container healthy, "
                     f"saw {late}\n{logs.stdout[-4000:]}")


def secrets_for(s: StackSettings) -> dict[str, str]:
    """The run folder's passwords, seeded once from ./.env (a stack started by hand with it)."""
    dot_env = REPO_ROOT / ".env"
    if not s.secrets_file.exists() and dot_env.exists():
        seed = {k: v for k, v in read_env_file(dot_env).items() if v != "change-me"}
        write_private(s.secrets_file, render(seed))
    return load_or_create(s.secrets_file)


def read_env_file_text(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def up(s: StackSettings, log: Callable[[str], None] = print) -> None:
    s.run_dir.mkdir(parents=True, exist_ok=True)
    if launcher.kafka.broker_running(s) or launcher.postgres.clusters(s):
        raise StackError(f"{s.run_dir} holds a native stack: use another CDC_STACK_DIR (or `make wipe` it)")
    secrets = secrets_for(s)
    (s.run_dir / MARKER).write_text(project_name(s) + "\n")
    images.build(s.jars_dir, s.run_dir / "docker-build", log=log, only_missing=True)
    started = time.monotonic()
    run_compose(s, secrets, "up", "-d")
    wait_healthy(s, secrets, log)
    log(f"containers healthy in {time.monotonic() - started:.0f}s (project {project_name(s)})")
    env = stack_env(s, secrets)
    for svc in current().services:
        migrations.upgrade(svc, env[f"{svc.env_prefix}_DATABASE_URL"])
    write_private(s.env_file, render(env))
    launcher.ensure_access(s, secrets)  # every worker's user and the declared ACLs, as native `up`
    components.start_all(s, log=log)
    log(f"compose stack up; its addresses: {s.env_file} (or `make env`)")


def down(s: StackSettings, volumes: bool = False, log: Callable[[str], None] = print) -> None:
    """Workers and components first (host processes), then the containers; --volumes deletes
    every byte of the stack (databases, Kafka) and its run folder."""
    for pid_file in sorted(s.pids_dir.glob("worker-*.pid")):
        if stop(pid_file, timeout=30):
            log(f"{pid_file.stem} stopped")
    components.stop_all(s, log=log)
    # the file's required passwords must be set even to stop it
    placeholders = {k: "unused" for k in read_env_file_text(compose.render_example_env())}
    secrets = {**placeholders, **read_env_file(s.secrets_file)}
    run_compose(s, secrets, "down", *(["--volumes"] if volumes else []), capture=False)
    if volumes:
        shutil.rmtree(s.run_dir, ignore_errors=True)
        log(f"deleted the volumes and {s.run_dir}")
