"""One chaos run: load on, N random faults (each held a few seconds, then recovered with the
stack's own controls), load off, then the invariants, with a deadline for everything. Bounded by
the number of faults and by seconds; the seed makes the draw of faults and load repeatable."""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from operate.chaos import checks, shop
from operate.chaos.faults import KINDS, Fault, StackControls
from services.registry import SAGA_STORE, current
from stack.kafka_client import ADMIN, access
from stack.settings import StackSettings
from streams import spec as spec_mod


@dataclass(frozen=True)
class ChaosSettings:
    faults: int = 50
    seconds: float = 1800.0      # the fault phase stops at this many seconds, with fewer faults if need be
    seed: int = 1
    hold: tuple[float, float] = (2.0, 8.0)   # seconds a part stays down
    gap: tuple[float, float] = (2.0, 6.0)    # seconds of load between one recovery and the next fault
    settle: float = 600.0        # deadline for sagas to end and replicas to converge after the faults
    healthy_within: float = 300.0   # for every worker to be healthy before the first fault
    kinds: tuple[str, ...] = tuple(KINDS)
    pace: float = 1.0            # seconds between two writes of the load (half of them place an order)


@dataclass
class ChaosReport:
    faults: list[Fault] = field(default_factory=list)
    invariants: dict[str, list[str]] = field(default_factory=dict)   # invariant -> violations
    seconds: float = 0.0
    placed: int = 0
    customer_writes: int = 0
    refused_writes: int = 0

    @property
    def violations(self) -> int:
        return sum(len(v) for v in self.invariants.values())


def databases() -> list[str]:
    """Services a fault may stop: every replication source and target, every saga participant
    and the saga store."""
    spec = spec_mod.load_enabled()
    names = {e.service for p in spec.pairs for e in (p.source, p.target)}
    names |= {n for s in current().sagas for n in s.participants}
    return sorted(names | {SAGA_STORE})


def run(cs: ChaosSettings, env: dict[str, str], out: Console) -> ChaosReport:
    started = time.monotonic()
    since = time.time()
    rng = random.Random(cs.seed)
    controls = StackControls(StackSettings.from_env(), databases())
    report = ChaosReport()
    kafka = access(env, ADMIN)
    had_workers = bool(controls.worker_pid_files(""))  # left as found: stopped after, if none ran before
    out.print("stack and workers up (cdc up, cdc workers start) ...")
    for step in (("up",), ("workers", "start")):
        res = controls.cdc(*step)
        if res.returncode != 0:
            raise SystemExit(f"`cdc {' '.join(step)}` failed:\n{(res.stdout + res.stderr)[-2000:]}")
    if not controls.wait_healthy(cs.healthy_within):
        raise SystemExit("the workers are not all healthy before any fault: see `cdc workers status`")
    out.print(f"stack and workers up in {time.monotonic() - started:.0f}s")
    letters_before = checks.dead_letter_counts(kafka)
    load = shop.ShopLoad(env, f"{cs.seed}-{int(since)}", cs.seed, pace_s=cs.pace).start()
    pause = threading.Event()  # never set: a wait that reads as one
    try:
        while len(report.faults) < cs.faults and time.monotonic() - started < cs.seconds:
            pause.wait(rng.uniform(*cs.gap))
            fault = controls.draw(rng, cs.kinds)
            fault.held_s = rng.uniform(*cs.hold)
            out.print(f"fault {len(report.faults) + 1}/{cs.faults}: {fault.kind} {fault.target} "
                      f"(down {fault.held_s:.1f}s) at {time.monotonic() - started:.0f}s")
            controls.inject(fault)
            pause.wait(fault.held_s)
            controls.recover(fault)
            report.faults.append(fault)
            out.print(f"  recovered in {fault.recovered_s:.0f}s{'; ' + fault.note if fault.note else ''}")
    finally:
        load.stop()
    out.print(f"faults done; {len(load.placed)} orders placed, {load.customer_writes} customer writes; "
              "waiting for sagas to end and replicas to converge ...")
    settle_by = time.monotonic() + cs.settle
    shop.wait_ended(env, load.placed, cs.settle)
    report.invariants = shop.violations(env, load.placed)
    report.invariants["every saga started during the run ended"] = checks.sagas_not_ended(
        env, since, max(10.0, settle_by - time.monotonic()))
    report.invariants["replicas equal their sources"] = checks.replicas_differ(
        spec_mod.load_enabled(), env, max(30.0, settle_by - time.monotonic()))
    report.invariants["nothing dead-lettered"] = checks.new_dead_letters(letters_before, checks.dead_letter_counts(kafka))
    out.print(f"checked in {time.monotonic() - settle_by + cs.settle:.0f}s after the faults")
    controls.cdc("up")  # whatever the last recovery left, the stack is left running
    if not had_workers:
        controls.cdc("workers", "stop")
    report.seconds = time.monotonic() - started
    report.placed, report.customer_writes, report.refused_writes = (len(load.placed), load.customer_writes,
                                                                    load.refused)
    return report


def print_report(report: ChaosReport, out: Console) -> None:
    faults = Table("#", "fault", "target", "down s", "recovered in s", "note", title="faults injected")
    for i, f in enumerate(report.faults, 1):
        faults.add_row(str(i), f.kind, f.target, f"{f.held_s:.1f}", f"{f.recovered_s:.1f}", f.note)
    out.print(faults)
    by_kind: dict[str, int] = {}
    for f in report.faults:
        by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
    held = Table("invariant", "held", "violations", title="invariants")
    for name, broken in report.invariants.items():
        held.add_row(name, "[green]yes[/green]" if not broken else "[red]NO[/red]",
                     "\n".join(broken[:5]) + (f"\n... {len(broken) - 5} more" if len(broken) > 5 else ""))
    out.print(held)
    out.print(f"{len(report.faults)} faults ({', '.join(f'{k} {n}' for k, n in sorted(by_kind.items()))}), "
              f"{report.violations} violations, {report.seconds:.0f}s; load: {report.placed} orders, "
              f"{report.customer_writes} customer writes ({report.refused_writes} refused while a database was down)")
