"""Pure core of a read model's counters: +1 per message, at most once per source position.
A key's messages all come from one partition, in order (the source is keyed by the entity), so
the offset of the last message counted is enough to skip a redelivered one: after a kill -9 the
Faust table comes back from its changelog holding that offset, and the replay counts nothing twice."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping

from streams.read_models.plugin import Count

Touched = dict[str, set[str]]   # counter table -> keys to flush


def apply(tables: Mapping[str, MutableMapping[str, list[int]]], counts: Iterable[Count], position: int,
          touched: Touched) -> int:
    """Count each of `counts` unless its key already includes `position`; every key is marked
    touched either way (the flush writes its absolute value, which the database guards).
    Returns how many counters moved."""
    moved = 0
    for c in counts:
        table = tables[c.table]
        count, last = table.get(c.key) or (0, -1)
        if last < position:
            table[c.key] = [count + 1, position]
            moved += 1
        else:  # written again all the same: a value ahead of its changelog (a batch cut short) becomes durable
            table[c.key] = [count, last]
        touched.setdefault(c.table, set()).add(c.key)
    return moved


def snapshot(tables: Mapping[str, Mapping[str, list[int]]], touched: Touched) -> dict[str, dict[str, list[int]]]:
    """The absolute values of the touched keys: what the flush writes."""
    return {name: {k: list(tables[name][k]) for k in keys} for name, keys in touched.items()}
