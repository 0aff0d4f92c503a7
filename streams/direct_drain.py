"""A Faust transport whose consumer hands fetched messages to the conductor by awaiting the
callback directly, instead of Faust's per-message `wait_first(callback, suspend_flow.wait())`
(mode creates, waits and cancels three tasks per message: about 60% of Faust's per-event time,
/work/shared/FAUST.md "Throughput"). Everything else is Faust's own: fetcher, gaps, commits,
acks, rebalance, flow control (with streams/commit_bookkeeping.py's fix of acks after a seek).

Why the direct await is safe: `wait_first` only matters when the callback blocks, and it blocks
only on (a) flow control suspended for a rebalance, (b) a full stream buffer, (c) a full
producer buffer. (a) is checked here before each message, in the same loop step as the
callback's own check, so a message is never handed over once the flow is suspended: it is
dropped and redelivered after the rebalance's seek to the committed offsets, exactly as Faust
drops it when suspend_flow wins the race. (b) and (c) unblock when the buffer drains or when the
rebalance clears the buffers; a stopping worker cancels the fetcher task, which cancels the wait.

Private Faust methods are overridden: faust-streaming is pinned in pyproject.toml."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, cast

from faust.transport import consumer as faust_consumer
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from mode import Service

from streams.commit_bookkeeping import SafeCommitsConsumer

SCHEME = "cdckafka"   # broker URL scheme that selects this transport (streams/faust_app.py)
YIELD_EVERY = 100     # hand the loop to others (web views, timers) at least this often, as Faust does


async def deliver(records: AsyncIterator[tuple[TP, Message]],
                  callback: Callable[[Message], Awaitable[Any]],
                  read_offset: MutableMapping[TP, int | None],
                  suspended: Callable[[], bool],
                  before_each: Callable[[TP, Message, int | None], Awaitable[None]]) -> int:
    """Hands each record newer than its partition's read offset to `callback`, unless the flow is
    suspended (rebalance): then the record is dropped, to be redelivered after the seek. Returns
    how many were handed over. `before_each(tp, message, read_offset)` does Faust's gap and
    commit bookkeeping."""
    delivered = 0
    since_yield = 0
    async for tp, message in records:
        since_yield += 1
        if since_yield > YIELD_EVERY:
            await asyncio.sleep(0)
            since_yield = 0
        offset = message.offset
        r_offset = read_offset[tp]
        if r_offset is not None and offset < r_offset:
            continue  # already read before a seek back; Faust drops it too
        await before_each(tp, message, r_offset)
        if not suspended():
            await callback(message)
            delivered += 1
        read_offset[tp] = offset
    return delivered


class DirectDrainConsumer(SafeCommitsConsumer):
    """Faust's aiokafka consumer with `_drain_messages` replaced (see the module docstring), and
    its acks forgotten at a seek (streams/commit_bookkeeping.py)."""

    async def _before_each(self, tp: TP, message: Message, r_offset: int | None) -> None:
        # Faust's own bookkeeping from _drain_messages, unchanged: record a gap in offsets
        # (compacted topics, transaction markers) so commits can pass it; commit every N acks.
        if r_offset and message.offset - r_offset > 1 and self.app.topics.acks_enabled_for(message.topic):
            await self._add_gap(tp, r_offset + 1, message.offset)
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()

    async def _drain_messages(self, fetcher: Any) -> None:
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        suspended = self.suspend_flow.is_set
        flag = faust_consumer.CONSUMER_FETCHING
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(flag)
                records = cast(AsyncIterator[tuple[TP, Message]], self.getmany(timeout=1.0))
                await self.sleep(0)  # getmany may return at once in a loop: let others run
                if not self.should_stop:
                    await deliver(records, self.callback, self._read_offset,
                                  lambda: suspended() or consumer_should_stop(), self._before_each)
                self.diag.unset_flag(flag)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(flag)


class Transport(faust_aiokafka.Transport):
    Consumer = DirectDrainConsumer


# The registry Faust resolves a broker URL's scheme in (faust.transport.drivers.TRANSPORTS);
# registered at import rather than as a setuptools entry point so an old virtualenv still works.
TRANSPORTS.aliases.setdefault(SCHEME, f"{__name__}:Transport")
