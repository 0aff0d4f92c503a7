"""Ports derived from names, not from positions in a list: adding a service or a worker does
not move the others (unless two names hash to one port; then the later name, in sorted order,
takes the next free one). Fixed offsets from the port base hold the broker and Connect."""
from __future__ import annotations

import zlib
from collections.abc import Iterable

KAFKA_OFFSET = 0
CONTROLLER_OFFSET = 1
CONNECT_OFFSET = 2                     # and the next ones: a Connect cluster's further workers
CONSOLE_OFFSET = 99                    # the web console (cdc console)
PG_FIRST, PG_COUNT = 100, 400          # service databases: base+100 .. base+499
WORKERS_FIRST, WORKERS_COUNT = 500, 1000  # workers' /healthz: base+500 .. base+1499
COMPONENTS_FIRST, COMPONENTS_COUNT = 1500, 100  # domains' components: base+1500 .. base+1599
SPAN = COMPONENTS_FIRST + COMPONENTS_COUNT  # a stack holds ports base .. base+SPAN-1


def allocate(names: Iterable[str], first: int, count: int) -> dict[str, int]:
    """Each name gets first + crc32(name) % count; a taken slot probes onward. Deterministic."""
    ports: dict[str, int] = {}
    taken: set[int] = set()
    unique = sorted(set(names))
    if len(unique) > count:
        raise ValueError(f"{len(unique)} names do not fit in {count} ports")
    for name in unique:
        slot = zlib.crc32(name.encode()) % count
        while slot in taken:
            slot = (slot + 1) % count
        taken.add(slot)
        ports[name] = first + slot
    return ports
