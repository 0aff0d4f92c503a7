"""Kafka 4 in KRaft mode (one combined broker/controller) and a Kafka Connect distributed
worker with Debezium on plugin.path, started with `java -cp` on the resolved jars."""
from __future__ import annotations

import base64
import os
import subprocess
import uuid
from pathlib import Path

import httpx

from stack import jars
from stack.kafka_client import ADMIN, CONNECT, SASL_MECHANISM, jaas, java_client_properties
from stack.kafka_client import secret_name as kafka_secret_name
from stack.processes import StackError, pid_alive, read_pid, spawn, wait_until
from stack.secrets import CONTROLLER
from stack.settings import HOST, StackSettings

JVM_COMMON = [
    "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent", "-XX:ParallelGCThreads=2", "-XX:ConcGCThreads=1",
    "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
]
BROKER_HEAP = ["-Xms256m", "-Xmx512m"]
CONNECT_HEAP = ["-Xms256m", "-Xmx512m"]
BROKER_STARTED = "Kafka Server started"  # KafkaBroker.STARTED_MESSAGE

LOG4J2 = """\
# log4j2 properties format: needs no YAML library on the classpath
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${{sys:kafka.logs.dir}}/{name}.log
appender.file.append = false
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = org.apache.kafka
logger.kafka.level = INFO
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
"""


def server_properties(s: StackSettings, secrets: dict[str, str]) -> str:
    """One SASL_PLAINTEXT listener (SCRAM-SHA-256) for clients and the broker itself, and the
    controller listener on SASL/PLAIN with one static login only the broker knows: nothing on
    either port answers without credentials. ACLs decide the rest; the admin and the broker's
    own controller login are the only super users. Holds passwords: written 0600."""
    admin = secrets[kafka_secret_name(ADMIN)]
    ctl = secrets[kafka_secret_name(CONTROLLER)]
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{HOST}:{s.controller_port}
listeners=CLIENT://{HOST}:{s.kafka_port},CONTROLLER://{HOST}:{s.controller_port}
advertised.listeners=CLIENT://{HOST}:{s.kafka_port}
inter.broker.listener.name=CLIENT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,CLIENT:SASL_PLAINTEXT
sasl.enabled.mechanisms={SASL_MECHANISM}
sasl.mechanism.inter.broker.protocol={SASL_MECHANISM}
sasl.mechanism.controller.protocol=PLAIN
listener.name.client.sasl.enabled.mechanisms={SASL_MECHANISM}
listener.name.client.scram-sha-256.sasl.jaas.config={jaas(ADMIN, admin)}
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
  username="{CONTROLLER}" password="{ctl}" user_{CONTROLLER}="{ctl}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:{ADMIN};User:{CONTROLLER}
log.dirs={s.kafka_data_dir}
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=168
"""


# Connect's password is a placeholder resolved from its environment: the file holds no secret.
CONNECT_PASSWORD_REF = "${env:" + kafka_secret_name(CONNECT) + "}"


def connect_properties(s: StackSettings, worker: str = "connect") -> str:
    """One worker's file; every worker of the cluster shares its group and storage topics."""
    port = s.connect_worker_port(worker)
    return f"""\
bootstrap.servers={s.kafka_bootstrap}
{java_client_properties(CONNECT, CONNECT_PASSWORD_REF, ("", "producer.", "consumer.", "admin."))}\
group.id=cdc-connect
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
config.storage.topic=_connect-configs
offset.storage.topic=_connect-offsets
status.storage.topic=_connect-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=1
status.storage.partitions=1
offset.flush.interval.ms=2000
listeners=http://{HOST}:{port}
rest.advertised.host.name={HOST}
rest.advertised.port={port}
plugin.path={jars.plugins_dir(s.jars_dir)}
# every plugin used ships a ServiceLoader manifest: skip the reflective scan (minutes on a busy machine)
plugin.discovery=service_load
scheduled.rebalance.max.delay.ms=0
topic.creation.enable=true
config.providers=env
config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
config.providers.env.param.allowlist.pattern=^CDC_.*
"""


def _write(path: Path, text: str, private: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:  # created 0600 before anything is written into it
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def _java(s: StackSettings, name: str, heap: list[str], main: str, *args: str) -> list[str]:
    log4j = _write(s.etc_dir / f"log4j2-{name}.properties", LOG4J2.format(name=name))
    return ["java", *heap, *JVM_COMMON, f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={s.logs_dir}", "-cp", jars.kafka_classpath(s.jars_dir), main, *args]


def pid_file(s: StackSettings, name: str) -> Path:
    return s.pids_dir / f"{name}.pid"


def log_file(s: StackSettings, name: str) -> Path:
    return s.logs_dir / f"{name}.out"


def new_cluster_id() -> str:
    """A KRaft cluster id (a UUID, URL-safe base64) that does not start with '-': the storage
    tool's parser would read one that does as an option (1 id in 64: a CI run failed so)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def format_storage(s: StackSettings, secrets: dict[str, str]) -> None:
    """Format the KRaft log folder once; the cluster id lives next to the data it belongs to.
    The admin's SCRAM credential is part of the bootstrap metadata (the broker refuses every
    client without one, so it cannot be added later); the other users are added by the admin."""
    props = _write(s.etc_dir / "server.properties", server_properties(s, secrets), private=True)
    if (s.kafka_data_dir / "meta.properties").exists():
        return
    cid_file = s.run_dir / "kafka-cluster.id"
    if not cid_file.exists():
        cid_file.write_text(new_cluster_id() + "\n")
    res = subprocess.run(
        _java(s, "storage", ["-Xmx256m"], "kafka.tools.StorageTool", "format", "--ignore-formatted",
              f"--cluster-id={cid_file.read_text().strip()}", "-c", str(props),
              "--add-scram", f"{SASL_MECHANISM}=[name={ADMIN},password={secrets[kafka_secret_name(ADMIN)]}]"),
        capture_output=True, text=True)
    if res.returncode != 0:
        raise StackError(f"formatting Kafka storage failed:\n{res.stdout}{res.stderr}")


def start_broker(s: StackSettings, secrets: dict[str, str]) -> bool:
    if read_pid(pid_file(s, "kafka")):
        return False
    props = _write(s.etc_dir / "server.properties", server_properties(s, secrets), private=True)
    log = log_file(s, "kafka")
    log.unlink(missing_ok=True)
    (s.logs_dir / "kafka.log").unlink(missing_ok=True)  # else the last run's "started" line counts
    pid = spawn(_java(s, "kafka", BROKER_HEAP, "kafka.Kafka", str(props)), log, pid_file(s, "kafka"))
    server_log = s.logs_dir / "kafka.log"
    wait_until("Kafka broker", lambda: _started(server_log, log), timeout=120,
               alive=lambda: pid_alive(pid), log_file=log if log.stat().st_size else server_log)
    return True


def _started(*logs: Path) -> bool:
    return any(log.exists() and BROKER_STARTED in log.read_text(errors="replace")[-200_000:] for log in logs)


def start_connect(s: StackSettings, worker_env: dict[str, str], worker: str = "connect") -> bool:
    """Start one Connect worker (`worker`: "connect", "connect-2", ...) unless it runs."""
    if read_pid(pid_file(s, worker)):
        return False
    suffix = "" if worker == "connect" else worker.removeprefix("connect")
    props = _write(s.etc_dir / f"connect-distributed{suffix}.properties", connect_properties(s, worker))
    log = log_file(s, worker)
    env = {**os.environ, **worker_env}  # the env config provider reads the worker's environment
    pid = spawn(_java(s, worker, CONNECT_HEAP, "org.apache.kafka.connect.cli.ConnectDistributed", str(props)),
                log, pid_file(s, worker), env=env)
    wait_until(f"Kafka Connect ({worker})", lambda: connect_healthy(s, worker), timeout=240,
               alive=lambda: pid_alive(pid), log_file=s.logs_dir / f"{worker}.log")
    return True


def connect_healthy(s: StackSettings, worker: str = "connect") -> bool:
    try:
        return httpx.get(f"http://{HOST}:{s.connect_worker_port(worker)}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def broker_running(s: StackSettings) -> bool:
    return read_pid(pid_file(s, "kafka")) is not None


def connect_running(s: StackSettings, worker: str = "connect") -> bool:
    return read_pid(pid_file(s, worker)) is not None
