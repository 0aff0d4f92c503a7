"""What the waiting side of a saga step (the orchestrator, or a choreographed participant's watch)
asks the pipeline before it lets a step time out: the state of the capture connectors on the
step's path (Kafka Connect's REST API), the participant's consumer group (live members, and what
it has not committed on the topics it reads) and its own unread backlog. Asked only for steps whose
deadline has passed, cached for a moment, and fail-safe: a check that cannot answer (the broker
or Connect away) is itself an infrastructure delay. `deadlines.infrastructure_delay` judges."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from connectors.connect_api import ConnectClient, ConnectError
from stack.kafka_client import KafkaAccess
from streams.sagas.deadlines import PipelineFacts, infrastructure_delay

log = logging.getLogger(__name__)
TTL_S = 2.0        # how long one answer about a route is reused: the checks stay off the hot path
TIMEOUT_S = 3.0    # per request; an outage answers with an error after this, and that is a delay too


@dataclass(frozen=True)
class Route:
    """The path between the waiting side and one participant: the capture connectors its message
    and the answer go through, the participant's consumer group and the topics that group reads."""
    connectors: tuple[str, ...]
    group: str
    topics: tuple[str, ...]


class PipelineProbe:
    def __init__(self, kafka: KafkaAccess, connect_url: str | None, own_backlog: Callable[[], Awaitable[int]],
                 ttl: float = TTL_S, timeout: float = TIMEOUT_S) -> None:
        self.kafka, self.connect_url, self.own_backlog = kafka, connect_url, own_backlog
        self.ttl, self.timeout = ttl, timeout
        self._admin: AdminClient | None = None
        self._connect: ConnectClient | None = None
        self._cache: dict[Route, tuple[float, PipelineFacts]] = {}
        self._lock = asyncio.Lock()

    async def delay(self, route: Route) -> str | None:
        """Why the pipeline may hold this participant's answer; None: it is healthy."""
        return infrastructure_delay(await self.facts(route))

    async def facts(self, route: Route) -> PipelineFacts:
        async with self._lock:  # one probe at a time: the clients below are not shared across threads
            cached = self._cache.get(route)
            if cached is not None and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
            try:
                own = await self.own_backlog()
                facts = replace(await asyncio.to_thread(self._remote, route), own_backlog=own)
            except Exception as exc:  # noqa: BLE001 - fail safe: an unanswerable check is a delay
                facts = PipelineFacts(unreachable=f"{type(exc).__name__}: {exc}"[:300])
            if facts.unreachable or infrastructure_delay(facts):
                log.info("pipeline to %s: %s", route.group, infrastructure_delay(facts))
            self._cache[route] = (time.monotonic(), facts)
            return facts

    # --- blocking checks, run in a thread ------------------------------------------------------
    def _remote(self, route: Route) -> PipelineFacts:
        connectors = {name: self._connector(name) for name in route.connectors}
        members, backlog = self._group(route.group, route.topics)
        return PipelineFacts(connectors=connectors, members=members, backlog=backlog)

    def _connector(self, name: str) -> str:
        if self.connect_url is None:
            return "RUNNING"  # not told where Connect is: the other checks still stand
        if self._connect is None:
            self._connect = ConnectClient(self.connect_url, timeout=self.timeout, rebalance_patience=0)
        try:
            s = self._connect.status(name)
        except ConnectError as exc:
            return "MISSING" if "404" in str(exc) else f"UNKNOWN ({str(exc)[:80]})"
        return "RUNNING" if s.running else "/".join([s.connector, *s.tasks])

    def _group(self, group: str, topics: tuple[str, ...]) -> tuple[int, int]:
        """(live members, messages not committed) of `group` on `topics`."""
        if self._admin is None:
            self._admin = AdminClient(self.kafka.config())
        admin, t = self._admin, self.timeout
        desc = admin.describe_consumer_groups([group], request_timeout=t)[group].result()
        listed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=t)
        committed = {(tp.topic, tp.partition): tp.offset for tp in (listed[group].result().topic_partitions or [])}
        tps = []
        for topic in topics:
            meta = admin.list_topics(topic, timeout=t).topics.get(topic)
            if meta is not None and meta.error is None:
                tps += [TopicPartition(topic, p) for p in meta.partitions]
        if not tps:
            return len(desc.members), 0
        ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=t)
        starts = admin.list_offsets({tp: OffsetSpec.earliest() for tp in tps}, request_timeout=t)
        backlog = 0
        for tp in tps:
            end, start = ends[tp].result().offset, starts[tp].result().offset
            at = committed.get((tp.topic, tp.partition), -1)
            backlog += max(0, end - (at if at >= 0 else start))
        return len(desc.members), backlog
