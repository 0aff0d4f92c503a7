"""The faults a chaos run injects, with the stack's own controls: kill -9 of the broker, a Kafka
Connect worker, a replication worker, a saga participant or the saga coordinator; one service's
PostgreSQL stopped and started. Recovery is what an operator runs: `cdc up` (idempotent: starts
only what is down), `cdc db start`, `cdc workers start` (starts only the workers not running)."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from stack import kafka
from stack.processes import read_pid
from stack.settings import StackSettings

# kind -> weight of the draw: a killed broker replays its log for minutes on a loaded machine, so it
# and Connect come up less often than the faults that cost seconds
KINDS = {"broker": 1, "connect": 1, "replication-worker": 2, "saga-worker": 2, "coordinator": 2, "database": 2}
REPO = Path(__file__).resolve().parents[2]
COORDINATORS = ("orchestrator", "monitor")


@dataclass
class Fault:
    kind: str
    target: str
    held_s: float = 0.0        # how long the part stayed down before recovery began
    recovered_s: float = 0.0   # how long recovery took (until every worker answered healthy again)
    note: str = ""


@dataclass
class StackControls:
    """Kills and restarts parts of one stack (the one CDC_STACK_DIR/CDC_PORT_BASE name)."""

    settings: StackSettings
    databases: list[str]   # services whose PostgreSQL a fault may stop
    log: list[str] = field(default_factory=list)

    def cdc(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, capture_output=True, text=True,
                             timeout=timeout)
        self.log.append(f"cdc {' '.join(args)} -> {res.returncode}")
        return res

    def worker_pid_files(self, prefix: str) -> list[Path]:
        return sorted(p for p in self.settings.pids_dir.glob(f"worker-{prefix}*.pid") if read_pid(p))

    def candidates(self) -> dict[str, list[str]]:
        """kind -> the targets running now (a kind with none is not drawn)."""
        sagas = [p.stem.removeprefix("worker-") for p in self.worker_pid_files("saga-")]
        coordinators = [s for s in sagas if s.endswith(COORDINATORS)]
        replication = [p.stem.removeprefix("worker-") for p in self.worker_pid_files("")
                       if not p.stem.startswith(("worker-saga-", "worker-connectors-", "worker-readmodel-"))]
        return {
            "broker": ["kafka"] if read_pid(kafka.pid_file(self.settings, "kafka")) else [],
            "connect": [w for w in self.settings.connect_worker_names()
                        if read_pid(kafka.pid_file(self.settings, w))],
            "replication-worker": replication,
            "saga-worker": [s for s in sagas if s not in coordinators],
            "coordinator": coordinators,
            "database": list(self.databases),
        }

    def draw(self, rng: random.Random, kinds: tuple[str, ...] = tuple(KINDS)) -> Fault:
        found = self.candidates()
        usable = [k for k in kinds if found[k]]
        if not usable:
            raise RuntimeError(f"nothing to inject: none of {', '.join(kinds)} is running")
        kind = rng.choices(usable, weights=[KINDS[k] for k in usable])[0]
        return Fault(kind, rng.choice(sorted(found[kind])))

    def inject(self, fault: Fault) -> None:
        if fault.kind == "database":
            res = self.cdc("db", "stop", fault.target)
            if res.returncode != 0:
                fault.note = f"stop failed: {res.stderr.strip()[-200:]}"
            return
        if fault.kind in ("broker", "connect"):
            pid_file = kafka.pid_file(self.settings, fault.target)
        else:
            pid_file = self.settings.pids_dir / f"worker-{fault.target}.pid"
        pid = read_pid(pid_file)
        if pid is None:
            fault.note = "was not running"
            return
        os.kill(pid, signal.SIGKILL)

    def recover(self, fault: Fault) -> None:
        """Start what the fault took down, then every worker that exited meanwhile (a worker
        gives up when the broker stays away); `cdc workers start` waits until each one it
        starts is healthy. The next fault does not wait for the backlogs: catching up under
        faults is part of the test."""
        started = time.monotonic()
        steps: list[tuple[str, ...]] = [("db", "start", fault.target)] if fault.kind == "database" else []
        if fault.kind in ("broker", "connect"):
            steps.append(("up",))
        steps.append(("workers", "start"))
        for step in steps:
            for attempt in range(1, 4):  # a broker replaying its log may outlast `cdc up`'s 120 s wait
                res = self.cdc(*step)
                if res.returncode == 0:
                    break
                fault.note = (fault.note + f"; `cdc {' '.join(step)}` attempt {attempt} failed: "
                              f"{(res.stdout + res.stderr).strip()[-160:]}").strip("; ")
        fault.recovered_s = time.monotonic() - started

    def wait_healthy(self, within: float) -> bool:
        """Poll `cdc workers status` (exit 0: every worker healthy) until it is, or `within` passed;
        a worker that exited meanwhile is started again."""
        deadline = time.monotonic() + within
        while True:
            if self.cdc("workers", "status").returncode == 0:
                return True
            if time.monotonic() > deadline:
                return False
            self.cdc("workers", "start")
            time.sleep(2)
