"""The stack's addresses as shell `KEY=value` lines (`make env`): the one way tests, the CLI
and outside scripts find the stack."""
from __future__ import annotations

from services.registry import DEBEZIUM_ROLE, OBSERVER_ROLE, current
from stack.kafka_client import CONNECT, client_env
from stack.kafka_client import secret_name as kafka_secret_name
from stack.roles import dsn
from stack.secrets import CONSOLE_TOKEN, kafka_passwords, secret_name
from stack.settings import HOST, StackSettings


def stack_env(s: StackSettings, secrets: dict[str, str]) -> dict[str, str]:
    env: dict[str, str] = {}
    services = current().services
    for svc in services:
        port = s.pg_ports[svc.name]
        env[f"{svc.env_prefix}_DATABASE_URL"] = dsn(svc.role, secrets[secret_name(svc, "service")], port, svc.database)
    for svc in services:
        port = s.pg_ports[svc.name]
        env[f"{svc.env_prefix}_OBSERVER_URL"] = dsn(OBSERVER_ROLE, secrets[secret_name(svc, "observer")], port, svc.database)
        env[f"{svc.env_prefix}_DEBEZIUM_URL"] = dsn(DEBEZIUM_ROLE, secrets[secret_name(svc, "debezium")], port, svc.database)
    # the broker: its address, protocol and mechanism, and each principal's user and password
    env.update(client_env(s.kafka_bootstrap, kafka_passwords(secrets)))
    env["CONNECT_URL"] = s.connect_url
    env["CONNECT_URLS"] = ",".join(s.connect_urls)  # every worker: a client fails over when one is down
    for c in current().components:
        env[c.env_name] = f"{c.scheme}://{HOST}:{s.component_ports[c.name]}"
    env["CONSOLE_URL"] = s.console_url
    if CONSOLE_TOKEN in secrets:
        env["CONSOLE_TOKEN"] = secrets[CONSOLE_TOKEN]
    env["CDC_STACK_DIR"] = str(s.run_dir)
    return env


def connect_worker_env(s: StackSettings, secrets: dict[str, str],
                       system_ids: dict[str, str] | None = None) -> dict[str, str]:
    """What the connector configs' ${env:...} placeholders resolve to, inside Connect."""
    env: dict[str, str] = {}
    for svc in current().services:
        env[f"CDC_{svc.env_prefix}_SYSTEM_ID"] = (system_ids or {}).get(svc.name, "unknown")
        env[f"CDC_{svc.env_prefix}_DB_HOST"] = HOST
        env[f"CDC_{svc.env_prefix}_DB_PORT"] = str(s.pg_ports[svc.name])
        env[f"CDC_{svc.env_prefix}_DEBEZIUM_PASSWORD"] = secrets[secret_name(svc, "debezium")]
    env[kafka_secret_name(CONNECT)] = secrets[kafka_secret_name(CONNECT)]  # connect-distributed.properties
    return env


def render(env: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in env.items())
