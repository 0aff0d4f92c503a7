"""A Faust table that writes each key's changelog record to the partition of the source message
being folded. Faust takes that partition from the stream's current event, which a batch taken
with `noack_take` does not set; the actor names it instead (one actor per source partition, and
the fold writes its tables without awaiting, so no other actor's partition can slip in)."""
from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import faust

SOURCE_PARTITION: ContextVar[int | None] = ContextVar("read_model_source_partition", default=None)


class SourcePartitionTable(faust.Table):
    def partition_for_key(self, key: Any) -> int | None:
        partition = SOURCE_PARTITION.get()
        if partition is None:
            raise RuntimeError(f"table {self.name}: written outside a read model's fold (no source partition)")
        return partition
