"""Deploys connector configs: project checks -> Connect's validation -> topics -> idempotent
PUT -> wait RUNNING. Any error before the PUTs deploys nothing."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from connectors import rules, topics
from connectors.configs import ConnectorFile
from connectors.connect_api import ConnectClient, ConnectError, ConnectorState
from stack.kafka_client import KafkaAccess
from streams.read_models.topics import ensure_changelogs, keep_unrefillable_sources


class DeployRefused(RuntimeError):
    def __init__(self, stage: str, errors: list[str]) -> None:
        super().__init__(f"{stage}: " + "; ".join(errors))
        self.stage = stage
        self.errors = errors


@dataclass
class DeployResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    topics_created: list[str] = field(default_factory=list)
    states: list[ConnectorState] = field(default_factory=list)


def validate(conns: list[ConnectorFile], client: ConnectClient) -> None:
    errors = rules.check_all(conns)
    if errors:
        raise DeployRefused("project checks", errors)
    errors = [e for conn in conns for e in client.validate(conn.name, conn.config)]
    if errors:
        raise DeployRefused("Kafka Connect validation", errors)


def deploy(conns: list[ConnectorFile], connect_url: str, kafka: KafkaAccess, timeout: float = 180.0) -> DeployResult:
    client = ConnectClient(connect_url)
    try:
        validate(conns, client)
        result = DeployResult()
        result.topics_created = topics.ensure_topics(kafka, [t for c in conns for t in c.all_topics()])
        result.topics_created += ensure_changelogs(kafka)
        keep_unrefillable_sources(kafka)
        for conn in conns:
            current = client.config(conn.name)
            wanted = {**conn.config, "name": conn.name}
            if current == wanted:
                result.unchanged.append(conn.name)  # a PUT would restart the connector for nothing
                if client.status(conn.name).failed:
                    client.restart_failed(conn.name)  # same config, but a task died: try it again
            elif client.put_config(conn.name, conn.config):
                result.created.append(conn.name)
            else:
                result.updated.append(conn.name)
        deadline = time.monotonic() + timeout
        for name in result.created + result.updated:
            conn = next(c for c in conns if c.name == name)
            while not client.tasks_carry(name, conn.config):
                if time.monotonic() > deadline:
                    raise ConnectError(f"{name}: tasks not reconfigured with the new config after {timeout:.0f}s")
                time.sleep(0.3)
        result.states = client.wait_running([c.name for c in conns], timeout=max(10.0, deadline - time.monotonic()))
        return result
    finally:
        client.close()
