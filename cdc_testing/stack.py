"""The stack a test session runs on: a run folder and a port base of its own, started once and
reused when it is already up, its addresses read from `cdc env` (the command `make env` runs)."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

CLI = [sys.executable, "-m", "cli"]


class StackUnavailable(RuntimeError):
    """The stack could not be found or started: the message carries the command's output."""


@dataclass
class TestStack:
    """One stack, addressed by CDC_STACK_DIR and CDC_PORT_BASE like every `cdc` command.
    `env_command` prints its KEY=value lines (this project's own tests use `make env`)."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    stack_dir: Path
    port_base: int
    env_command: list[str] = field(default_factory=lambda: [*CLI, "env"])
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. CDC_DOMAINS, PYTHONPATH of the user's domain
    cwd: Path | None = None

    @property
    def process_env(self) -> dict[str, str]:
        """The environment every command and worker of this stack runs with."""
        return {**os.environ, **self.extra_env, "CDC_STACK_DIR": str(self.stack_dir), "CDC_PORT_BASE": str(self.port_base)}

    def cli(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Run `cdc <args>` against this stack; fail with its output if it fails and `check`."""
        res = subprocess.run([*CLI, *args], env=self.process_env, cwd=self.cwd, capture_output=True, text=True,
                             timeout=timeout)
        if check and res.returncode != 0:
            raise StackUnavailable(f"`cdc {' '.join(args)}` failed ({res.returncode}):\n"
                                   f"{res.stdout[-3000:]}{res.stderr[-3000:]}")
        return res

    def is_up(self) -> bool:
        """Every process of the stack runs (`cdc status` exits 0 only then)."""
        return self.cli("status", check=False, timeout=120).returncode == 0

    def ensure_up(self, deploy: bool = True) -> bool:
        """Start what is not running (idempotent) and deploy the connectors; True if it had to start."""
        if self.is_up():
            return False
        self.cli("up")
        if deploy:
            self.cli("deploy")
        return True

    def env(self) -> dict[str, str]:
        """The stack's addresses: <SERVICE>_DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, CONNECT_URL, ..."""
        res = subprocess.run(self.env_command, env=self.process_env, cwd=self.cwd, capture_output=True, text=True)
        if res.returncode != 0:
            raise StackUnavailable(f"`{shlex.join(self.env_command)}` failed (is the stack up?):\n{res.stdout}{res.stderr}")
        env = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
        for key in ("KAFKA_BOOTSTRAP_SERVERS", "CONNECT_URL"):
            if key not in env:
                raise StackUnavailable(f"`{shlex.join(self.env_command)}` printed no {key}: {res.stdout!r}")
        return {**self.extra_env, **env}
