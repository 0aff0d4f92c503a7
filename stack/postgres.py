"""One PostgreSQL cluster per service database, from Debian's binaries, run as an
unprivileged OS user (PostgreSQL refuses root), reachable only over TCP on 127.0.0.1."""
from __future__ import annotations

import functools
import hashlib
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

from services.registry import ServiceSpec
from stack.processes import StackError, tail
from stack.settings import HOST, StackSettings

SUPERUSER = "postgres"
FALLBACK_OS_USER = "cdc-postgres"
MIN_MAJOR = 15  # the oldest server the stack runs on: README "Needs"


def find_bin_dir() -> Path:
    """The newest installed server binaries (or CDC_PG_BIN), refused if older than MIN_MAJOR."""
    override = os.environ.get("CDC_PG_BIN")
    candidates = [Path(override)] if override else sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0
    )
    for cand in reversed(candidates):
        if (cand / "initdb").exists() and (cand / "pg_ctl").exists():
            require_supported(cand)
            return cand
    raise StackError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin. "
        "Install them: sudo apt-get install -y postgresql (or set CDC_PG_BIN to their folder)."
    )


@functools.cache
def require_supported(bin_dir: Path) -> int:
    """The major version of the binaries in bin_dir; a StackError if it is older than MIN_MAJOR.

    Cached: every status check asks for the binaries, and they do not change under a running CLI."""
    res = subprocess.run([str(bin_dir / "pg_ctl"), "--version"], capture_output=True, text=True)
    return check_version(res.stdout + res.stderr, bin_dir)


def check_version(version_text: str, bin_dir: Path) -> int:
    """Parse `pg_ctl --version` ("pg_ctl (PostgreSQL) 15.18 (Debian ...)") and refuse an old major."""
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", version_text)
    if match is None:
        raise StackError(f"could not tell the PostgreSQL version of {bin_dir}/pg_ctl: {version_text.strip()!r}")
    major = int(match.group(1))
    if major < MIN_MAJOR:
        raise StackError(
            f"PostgreSQL {major} found in {bin_dir}; the stack needs {MIN_MAJOR} or newer (the version it is built "
            f"and tested on). Install a newer server (Debian 12: sudo apt-get install -y postgresql; older releases: "
            f"the PGDG apt repository's postgresql-{MIN_MAJOR}), or point CDC_PG_BIN at its bin folder."
        )
    return major


def os_user() -> str | None:
    """The account that runs PostgreSQL: None means 'this user' (we are not root)."""
    if os.geteuid() != 0:
        return None
    wanted = os.environ.get("CDC_PG_OS_USER")
    for name in ([wanted] if wanted else ["postgres", FALLBACK_OS_USER]):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", FALLBACK_OS_USER], check=True)
    return FALLBACK_OS_USER


def _as_pg_user(cmd: list[str]) -> list[str]:
    user = os_user()
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(_as_pg_user(cmd), capture_output=True, text=True)
    if res.returncode != 0:
        raise StackError(f"{what} failed ({' '.join(cmd)}):\n{res.stdout}{res.stderr}")
    return res


def _chown(path: Path) -> None:
    user = os_user()
    if user:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def prepare_root(settings: StackSettings) -> Path:
    """Create the folder that holds the clusters, where the PostgreSQL account can reach it.

    A clone under a mode-700 home folder is not traversable by that account: then the
    clusters live under /var/tmp and the run folder links to them.
    """
    root = settings.pg_root
    if root.exists():
        return root
    root.mkdir(parents=True)
    _chown(root)
    user = os_user()
    if user is None or subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(root)]).returncode == 0:
        return root
    root.rmdir()
    digest = hashlib.sha1(str(settings.run_dir).encode()).hexdigest()[:12]
    real = Path("/var/tmp") / f"cdc-stack-{digest}"
    real.mkdir(mode=0o755, exist_ok=True)
    _chown(real)
    root.symlink_to(real)
    return root


def cluster_conf(port: int) -> str:
    return "\n".join([
        "# written by the stack launcher at every `up`",
        f"listen_addresses = '{HOST}'",
        f"port = {port}",
        "unix_socket_directories = ''        # TCP on loopback only",
        "wal_level = logical                 # kept in the cluster's own config: slots need it at every start",
        "max_wal_senders = 10",
        "max_replication_slots = 10",
        "max_slot_wal_keep_size = '2GB'      # a forgotten slot cannot fill the disk",
        "track_commit_timestamp = on         # end-to-end latency is measured with commit times",
        "password_encryption = 'scram-sha-256'",
        "shared_buffers = '48MB'",
        "max_connections = 60",
        "log_min_messages = warning",
        "",
    ])


def ensure_cluster(settings: StackSettings, service: ServiceSpec, superuser_password: str) -> None:
    data = settings.pg_data_dir(service)
    if not (data / "PG_VERSION").exists():
        bin_dir = find_bin_dir()
        pwfile = settings.pg_root / f".{service.name}.pw"
        pwfile.write_text(superuser_password + "\n")
        _chown(pwfile)
        try:
            _run([str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--pwfile", str(pwfile),
                  "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"],
                 f"initdb for {service.name}")
        finally:
            pwfile.unlink(missing_ok=True)
        conf = data / "postgresql.conf"
        _run(["sh", "-c", f"echo \"include_if_exists = 'cdc.conf'\" >> '{conf}'"], "configuring postgresql.conf")
    conf_file = data / "cdc.conf"
    tmp = settings.pg_root / f".{service.name}.conf"
    tmp.write_text(cluster_conf(settings.pg_ports[service.name]))
    _chown(tmp)
    _run(["cp", str(tmp), str(conf_file)], f"writing {conf_file}")
    tmp.unlink(missing_ok=True)


def log_file(settings: StackSettings, service: ServiceSpec) -> Path:
    return settings.pg_root / f"{service.name}.log"


def is_running(settings: StackSettings, service: ServiceSpec) -> bool:
    return _running(settings.pg_data_dir(service))


def _running(data: Path) -> bool:
    if not data.exists():
        return False
    res = subprocess.run(_as_pg_user([str(find_bin_dir() / "pg_ctl"), "-D", str(data), "status"]),
                         capture_output=True, text=True)
    return res.returncode == 0


def start(settings: StackSettings, service: ServiceSpec) -> None:
    data = settings.pg_data_dir(service)
    log = log_file(settings, service)
    res = subprocess.run(_as_pg_user([str(find_bin_dir() / "pg_ctl"), "-D", str(data), "-l", str(log),
                                      "-w", "-t", "60", "start"]), capture_output=True, text=True)
    if res.returncode != 0:
        raise StackError(f"PostgreSQL for {service.name} did not start. Last lines of {log}:\n{tail(log)}")


def stop(settings: StackSettings, service: ServiceSpec) -> bool:
    return stop_dir(settings.pg_data_dir(service))


def stop_dir(data: Path) -> bool:
    if not _running(data):
        return False
    _run([str(find_bin_dir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"],
         f"stopping PostgreSQL in {data}")
    return True


def clusters(settings: StackSettings) -> list[str]:
    """Names of the clusters under the run folder (one folder with PG_VERSION each)."""
    root = settings.pg_root
    return sorted(p.parent.name for p in root.glob("*/PG_VERSION")) if root.exists() else []


def wipe(settings: StackSettings) -> None:
    root = settings.pg_root
    if root.is_symlink():
        shutil.rmtree(root.resolve(), ignore_errors=True)
        root.unlink()
    elif root.exists():
        shutil.rmtree(root)
