"""The ceiling Faust sets for one worker on this machine: the same app settings, consumer (the
direct drain), agent and batching as a replication worker (streams/app.py), with nothing done
per batch but the acks.
Run by bench/replication.py beside the real worker, in alternation.

    python -m bench.faust_ceiling TOPIC EXPECTED_EVENTS   (prints: events/s)"""
from __future__ import annotations

import asyncio
import os
import sys
import time

import faust
from faust import Worker

from cli import stack_env
from stack.kafka_client import ADMIN, access
from streams.direct_drain import SCHEME as DIRECT_DRAIN
from streams.faust_app import MIN_STREAM_BUFFER
from streams.quiet_monitor import QuietMonitor


def main() -> None:
    topic_name, expected = sys.argv[1], int(sys.argv[2])
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    env = stack_env.load()
    kafka = access(env, ADMIN)
    app = faust.App(f"bench-ceiling-{os.getpid()}", broker=f"{DIRECT_DRAIN}://{kafka.bootstrap}",
                    broker_credentials=kafka.faust_credentials(),
                    store="memory://", key_serializer="raw", value_serializer="raw", topic_allow_declare=False,
                    topic_disable_leader=True, consumer_auto_offset_reset="earliest", web_enabled=False,
                    stream_buffer_maxsize=MIN_STREAM_BUFFER, consumer_max_fetch_size=8 * 1024 * 1024,
                    broker_max_poll_records=5000, monitor=QuietMonitor())
    topic = app.topic(topic_name, allow_empty=True)
    seen = {"n": 0, "t0": 0.0}

    @app.agent(topic, isolated_partitions=True)
    async def drain(stream):
        async for events in stream.noack_take(5000, within=0.05):
            if not seen["t0"]:
                seen["t0"] = time.monotonic()
            for event in events:
                await stream.ack(event)
            seen["n"] += len(events)
            if seen["n"] >= expected:
                print(f"{expected / (time.monotonic() - seen['t0']):.0f}", flush=True)
                os._exit(0)

    sys.argv = [sys.argv[0], "worker"]
    Worker(app, loglevel="error", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
