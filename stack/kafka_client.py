"""How a client reaches the broker: the one listener is SASL_PLAINTEXT with SCRAM-SHA-256, and
every principal has its own user name and password. `make env` carries them as

    KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM,
    KAFKA_<ROLE>_USERNAME, KAFKA_<ROLE>_PASSWORD    (e.g. KAFKA_OBSERVER_*, KAFKA_REPLICATION_<PAIR>_*)

and `access(env, principal)` turns them into a `KafkaAccess`, which builds a confluent-kafka
config or Faust's credentials, so no call site spells out security settings. There is no
credential-less fallback: a principal whose variables are missing is an error."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SECURITY_PROTOCOL = "SASL_PLAINTEXT"
SASL_MECHANISM = "SCRAM-SHA-256"
PREFIX = "cdc-"
# Principals every stack has; workers' are derived from their names (connectors/acls.py).
ADMIN = "cdc-admin"          # super user: topics, ACLs, credentials; tests and benches
CONNECT = "cdc-connect"      # Kafka Connect: its own topics, writes captured and routed topics
OBSERVER = "cdc-observer"    # `cdc observe` and the demo: reads topics, describes groups
OPERATOR = "cdc-operator"    # `cdc dlq`: reads dead letters, re-drives them to where they came from


def role_key(principal: str) -> str:
    """cdc-replication-a-to-b -> REPLICATION_A_TO_B."""
    return re.sub(r"[^A-Za-z0-9]", "_", principal.removeprefix(PREFIX)).upper()


def username_var(principal: str) -> str:
    return f"KAFKA_{role_key(principal)}_USERNAME"


def password_var(principal: str) -> str:
    return f"KAFKA_{role_key(principal)}_PASSWORD"


def secret_name(principal: str) -> str:
    """Where the stack keeps the principal's password (run folder's secrets.env, and Connect's ${env:...})."""
    return f"CDC_KAFKA_{role_key(principal)}_PASSWORD"


class MissingCredentials(RuntimeError):
    pass


@dataclass(frozen=True)
class KafkaAccess:
    bootstrap: str
    username: str
    password: str
    protocol: str = SECURITY_PROTOCOL
    mechanism: str = SASL_MECHANISM

    def config(self, **extra: Any) -> dict[str, Any]:
        """A confluent-kafka (librdkafka) config; `extra` keys use dots, e.g. config(**{"group.id": g})."""
        return {"bootstrap.servers": self.bootstrap, "security.protocol": self.protocol,
                "sasl.mechanism": self.mechanism, "sasl.username": self.username,
                "sasl.password": self.password, **extra}

    def faust_credentials(self) -> Any:
        import faust

        return faust.SASLCredentials(username=self.username, password=self.password, mechanism=self.mechanism)


def access(env: Mapping[str, str], principal: str) -> KafkaAccess:
    """The principal's access from `make env` (or the process environment, which wins: a
    test-only worker gets its credentials that way)."""
    def get(key: str) -> str | None:
        return os.environ.get(key) or env.get(key)

    bootstrap = get("KAFKA_BOOTSTRAP_SERVERS")
    user, password = get(username_var(principal)), get(password_var(principal))
    if not bootstrap or not user or not password:
        raise MissingCredentials(f"no Kafka credentials for {principal} ({username_var(principal)}, "
                                 f"{password_var(principal)} in `make env`): run `make up deploy`")
    return KafkaAccess(bootstrap, user, password, get("KAFKA_SECURITY_PROTOCOL") or SECURITY_PROTOCOL,
                       get("KAFKA_SASL_MECHANISM") or SASL_MECHANISM)


def client_config(env: Mapping[str, str], principal: str, **extra: Any) -> dict[str, Any]:
    return access(env, principal).config(**extra)


def client_env(bootstrap: str, credentials: Mapping[str, str]) -> dict[str, str]:
    """`make env` lines of the broker: principal -> password."""
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_SECURITY_PROTOCOL": SECURITY_PROTOCOL,
           "KAFKA_SASL_MECHANISM": SASL_MECHANISM}
    for principal, password in credentials.items():
        env[username_var(principal)] = principal
        env[password_var(principal)] = password
    return env


def jaas(username: str, password: str, mechanism: str = SASL_MECHANISM) -> str:
    module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mechanism == "PLAIN"
              else "org.apache.kafka.common.security.scram.ScramLoginModule")
    return f'{module} required username="{username}" password="{password}";'


def java_client_properties(username: str, password: str, prefixes: tuple[str, ...] = ("",)) -> str:
    """SASL lines of a Java client's properties (Connect's worker and its producer./consumer./admin.)."""
    lines = []
    for p in prefixes:
        lines += [f"{p}security.protocol={SECURITY_PROTOCOL}", f"{p}sasl.mechanism={SASL_MECHANISM}",
                  f"{p}sasl.jaas.config={jaas(username, password)}"]
    return "\n".join(lines) + "\n"
