"""A Faust table for read models, with two changes to how a write reaches its changelog:

- the changelog record goes to the partition of the source message being folded. Faust takes it
  from the stream's current event, which a batch taken with `noack_take` does not set; the actor
  names it instead (one actor per source partition, and the fold writes its tables without
  awaiting, so no other actor's partition can slip in);
- the write's delivery is kept, so the actor can wait for it before acknowledging. Faust only
  logs a changelog record the broker did not take ("_on_published error"); if the batch's offsets
  were committed anyway, the next recovery of the table (a restart, or a rebalance: the memory
  store replays its changelog) would lose those counts for good."""
from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import Any

import faust

SOURCE_PARTITION: ContextVar[int | None] = ContextVar("read_model_source_partition", default=None)
DELIVERIES: ContextVar[list[asyncio.Future] | None] = ContextVar("read_model_changelog_deliveries", default=None)


class SourcePartitionTable(faust.Table):
    def partition_for_key(self, key: Any) -> int | None:
        partition = SOURCE_PARTITION.get()
        if partition is None:
            raise RuntimeError(f"table {self.name}: written outside a read model's fold (no source partition)")
        return partition

    def on_key_set(self, key: Any, value: Any) -> None:
        # Faust's own on_key_set, keeping the delivery (these tables are not windowed: no key TTL)
        fut = self.send_changelog(self.partition_for_key(key), key, value)
        deliveries = DELIVERIES.get()
        if deliveries is None:
            raise RuntimeError(f"table {self.name}: written outside a read model's fold (nobody awaits the changelog)")
        deliveries.append(fut)
        self._sensor_on_set(self, key, value)


async def delivered(deliveries: list[asyncio.Future], timeout: float) -> None:
    """Every changelog record of the batch is in the broker; raises the first failure (or TimeoutError)."""
    if deliveries:
        await asyncio.wait_for(asyncio.gather(*deliveries), timeout)
