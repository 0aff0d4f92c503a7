"""The direct drain's hand-over (streams/direct_drain.py): what reaches the conductor, what is
dropped while the flow is suspended for a rebalance, and the read offsets it leaves behind."""
import asyncio
from collections import defaultdict
from dataclasses import dataclass

from faust.types import TP

from streams.direct_drain import SCHEME, deliver

P0 = TP("t", 0)
P1 = TP("t", 1)


@dataclass
class Msg:
    tp: TP
    offset: int


async def _records(items):
    for tp, offset in items:
        yield tp, Msg(tp, offset)


def _run(items, suspend_after: int | None = None, read_offset=None):
    read_offset = read_offset if read_offset is not None else defaultdict(lambda: None)
    handed: list[tuple[TP, int]] = []
    checked: list[tuple[TP, int, int | None]] = []
    flow = {"suspended": False}

    async def callback(message):
        handed.append((message.tp, message.offset))
        if suspend_after is not None and len(handed) >= suspend_after:
            flow["suspended"] = True   # a rebalance starts while this message is being handed over

    async def before_each(tp, message, r_offset):
        checked.append((tp, message.offset, r_offset))

    n = asyncio.run(deliver(_records(items), callback, read_offset, lambda: flow["suspended"], before_each))
    return n, handed, checked, read_offset


def test_every_record_is_handed_over_in_order_and_read_offsets_follow():
    items = [(P0, 0), (P1, 0), (P0, 1), (P1, 1), (P0, 2)]
    n, handed, checked, read = _run(items)
    assert n == 5 and handed == items
    assert read[P0] == 2 and read[P1] == 1
    assert checked[2] == (P0, 1, 0)   # Faust's gap/commit bookkeeping sees the previous read offset


def test_a_suspended_flow_stops_delivery_and_the_rest_is_dropped_for_redelivery():
    items = [(P0, 0), (P0, 1), (P0, 2), (P1, 0)]
    n, handed, _, read = _run(items, suspend_after=2)
    assert n == 2 and handed == [(P0, 0), (P0, 1)], f"expected delivery to stop after 2, got {handed}"
    # dropped ones are marked read, as Faust does; the rebalance's seek to the committed offsets
    # resets the read offsets, so they are fetched and delivered again
    assert read[P0] == 2 and read[P1] == 0


def test_records_older_than_the_read_offset_are_skipped():
    read = defaultdict(lambda: None, {P0: 5})
    n, handed, checked, _ = _run([(P0, 3), (P0, 5), (P0, 6)], read_offset=read)
    assert handed == [(P0, 5), (P0, 6)] and n == 2
    assert [c[1] for c in checked] == [5, 6]


def test_every_worker_app_uses_the_direct_drain_transport():
    from faust.transport.drivers import TRANSPORTS

    from stack.kafka_client import KafkaAccess
    from streams.direct_drain import DirectDrainConsumer
    from streams.faust_app import MIN_STREAM_BUFFER, new_app

    app = new_app("cdc-unit-drain", KafkaAccess("127.0.0.1:9", "unit", "secret"), 1234, batch_max=200)
    assert str(app.conf.broker[0]).startswith(f"{SCHEME}://")
    assert TRANSPORTS.by_url(app.conf.broker[0]).Consumer is DirectDrainConsumer
    assert app.conf.stream_buffer_maxsize >= MIN_STREAM_BUFFER
