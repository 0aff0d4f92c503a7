"""Faust's default Monitor records statistics for every message and stream event (several
dict updates and timestamps each). Replication reports its own Prometheus metrics per batch,
so this monitor keeps Faust's bookkeeping for commits and rebalances but skips the per-event
part, the largest single share of Faust's per-event cost measured by `make bench-replication`."""
from __future__ import annotations

from typing import Any

from faust.sensors.monitor import Monitor


class QuietMonitor(Monitor):
    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None
