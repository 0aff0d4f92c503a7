"""The peer: Debezium's JDBC sink connector in a Kafka Connect worker process of its own (so
its CPU and memory are its own), on the same broker, writing to its own database on the same
PostgreSQL instance. Config fixed and documented here, tuned as its docs suggest: upsert on the
record key, deletes enabled, larger batches, the reduction buffer (one write per key per batch)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from stack import jars
from stack.kafka import CONNECT_HEAP, JVM_COMMON, LOG4J2
from stack.kafka_client import ADMIN, java_client_properties
from stack.kafka_client import secret_name as kafka_secret_name
from stack.processes import pid_alive, spawn, stop, wait_until
from stack.secrets import read_env_file
from stack.settings import HOST, StackSettings

BATCH = 5000


def jdbc_sink_config(topic: str, table: str, url: str, user: str, password: str) -> dict[str, str]:
    fields = ",".join(f"{topic}:{f}" for f in ("id", "name", "country", "version"))
    return {
        "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
        "tasks.max": "1",                      # ours runs one worker: one task each
        "topics": topic,
        "connection.url": url, "connection.username": user, "connection.password": password,
        "insert.mode": "upsert", "delete.enabled": "true", "primary.key.mode": "record_key",
        "schema.evolution": "basic",           # creates the table from the first record's schema
        "collection.name.format": table,
        "field.include.list": fields,          # the columns ours replicates too
        "batch.size": str(BATCH),
        "use.reduction.buffer": "true",
        "consumer.override.max.poll.records": str(BATCH),
        "consumer.override.auto.offset.reset": "earliest",
    }


def jdbc_url(postgres_url: str) -> str:
    """postgresql://user:pw@host:port/db -> jdbc:postgresql://host:port/db (credentials go apart)."""
    return "jdbc:postgresql://" + postgres_url.split("@", 1)[1]


PEER_PASSWORD = "CDC_BENCH_KAFKA_PASSWORD"


@dataclass
class PeerConnect:
    settings: StackSettings
    port: int
    pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def run_dir(self) -> Path:
        return self.settings.run_dir / "bench-connect"

    def properties(self) -> str:
        return f"""\
bootstrap.servers={self.settings.kafka_bootstrap}
{java_client_properties(ADMIN, "${env:" + PEER_PASSWORD + "}", ("", "producer.", "consumer.", "admin."))}\
config.providers=env
config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
config.providers.env.param.allowlist.pattern=^{PEER_PASSWORD}$
group.id=cdc-bench-connect
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
config.storage.topic=_bench-connect-configs
offset.storage.topic=_bench-connect-offsets
status.storage.topic=_bench-connect-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=1
status.storage.partitions=1
listeners=http://{HOST}:{self.port}
rest.advertised.host.name={HOST}
rest.advertised.port={self.port}
plugin.path={self.plugins}
connector.client.config.override.policy=All
scheduled.rebalance.max.delay.ms=0
"""

    @property
    def plugins(self) -> Path:
        """Only the JDBC sink on this worker's plugin path."""
        path = self.run_dir / "plugins"
        path.mkdir(parents=True, exist_ok=True)
        link = path / "debezium-connector-jdbc"
        if not link.is_symlink():
            link.symlink_to(jars.plugins_dir(self.settings.jars_dir) / "debezium-connector-jdbc")
        return path

    def start(self) -> None:
        stop(self.pid_file)  # one an interrupted bench left
        jars.resolve(self.settings.jars_dir, with_jdbc_sink=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        props = self.run_dir / "connect.properties"
        props.write_text(self.properties())
        log4j = self.run_dir / "log4j2.properties"
        log4j.write_text(LOG4J2.format(name="bench-connect"))
        cmd = ["java", *CONNECT_HEAP, *JVM_COMMON, f"-Dlog4j2.configurationFile={log4j}",
               f"-Dkafka.logs.dir={self.run_dir}", "-cp", jars.kafka_classpath(self.settings.jars_dir),
               "org.apache.kafka.connect.cli.ConnectDistributed", str(props)]
        # the bench's own Connect worker runs as the admin (it makes its topics and sink groups)
        password = read_env_file(self.settings.secrets_file)[kafka_secret_name(ADMIN)]
        pid = spawn(cmd, self.run_dir / "connect.out", self.pid_file, env={**os.environ, PEER_PASSWORD: password})
        self.pid = pid
        wait_until("the bench's Kafka Connect worker", self._healthy, timeout=240, alive=lambda: pid_alive(pid),
                   log_file=self.run_dir / "bench-connect.log")

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "connect.pid"

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        stop(self.pid_file)
