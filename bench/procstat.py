"""CPU seconds and memory of a process, from /proc (Linux): what each side of a race costs."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Meter:
    """CPU used and the largest RSS seen between start() and the last sample()."""
    pid: int
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    peak_mb: float = 0.0
    samples: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.cpu_start = cpu_seconds(self.pid)
        self.sample()

    def sample(self) -> None:
        mb = rss_mb(self.pid)
        self.samples.append(mb)
        self.peak_mb = max(self.peak_mb, mb)
        self.cpu_end = cpu_seconds(self.pid)

    @property
    def cpu(self) -> float:
        return self.cpu_end - self.cpu_start
