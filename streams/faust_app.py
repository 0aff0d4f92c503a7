"""The Faust settings every worker of the pipeline shares: raw bytes in (parsed at the edge),
no topic declared by Faust, loopback-only web server with Faust's table views off, and the
direct-drain consumer (streams/direct_drain.py) on every worker kind."""
from __future__ import annotations

import tempfile
from pathlib import Path

import faust

from stack.kafka_client import KafkaAccess
from streams.commit_bookkeeping import SCHEME as FAUST_DRAIN
from streams.direct_drain import SCHEME as DIRECT_DRAIN
from streams.quiet_monitor import QuietMonitor

# The stream buffer the direct drain needs: at a few thousand events, buffer pressure pauses the
# partitions and Faust's fetcher then sleeps a second (/work/shared/FAUST.md, "Throughput").
MIN_STREAM_BUFFER = 32_768


def new_app(app_id: str, kafka: KafkaAccess, web_port: int, session_timeout: float = 30.0,
            batch_max: int = 5000, direct_drain: bool = True) -> faust.App:
    """`direct_drain=False` keeps Faust's own per-message drain (the bench's before side,
    `--compare-drain`); both fix Faust's acks after a seek (streams/commit_bookkeeping.py)."""
    # Faust makes a data folder even with the memory store (with mkdir, no parents): not in the
    # working directory.
    datadir = Path(tempfile.gettempdir()) / "cdc-faust" / f"{app_id}-data"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,                          # = the consumer group
        broker=f"{DIRECT_DRAIN if direct_drain else FAUST_DRAIN}://{kafka.bootstrap}",
        broker_credentials=kafka.faust_credentials(),  # the worker's own principal: no open listener
        store="memory://",
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",
        topic_allow_declare=False,       # topics belong to the connectors' deploy
        topic_disable_leader=True,       # no __assignor-__leader topic
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=min(3.0, session_timeout / 3),
        broker_rebalance_timeout=session_timeout,
        broker_commit_interval=1.0,
        # Throughput: bigger fetches and stream buffers keep batches full (make bench-replication).
        stream_buffer_maxsize=max(batch_max * 4, MIN_STREAM_BUFFER if direct_drain else 0),
        consumer_max_fetch_size=8 * 1024 * 1024,
        broker_max_poll_records=batch_max,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        web_port=web_port,
        web_tables_enabled=False,        # would serve table contents
        web_router_enabled=False,
        web_graph_enabled=False,
        monitor=QuietMonitor(),          # per-batch metrics are ours; skip Faust's per-event stats
    )
