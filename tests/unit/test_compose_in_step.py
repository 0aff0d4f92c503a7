"""docker-compose.yml and its overrides are rendered from the same declarations as the native stack
(`cdc compose`): the committed files must equal the render, and the render must hold what Connect needs."""
from __future__ import annotations

import re

import yaml

from connectors import configs
from services.registry import current
from stack import compose
from stack.envfile import connect_worker_env
from stack.kafka_client import CONNECT
from stack.kafka_client import secret_name as kafka_secret_name
from stack.secrets import ROLE_KINDS, secret_name
from stack.settings import StackSettings


def test_committed_compose_files_equal_the_render():
    rendered = {compose.COMPOSE_FILE: compose.render_compose(), compose.PORTS_OVERRIDE: compose.render_ports_override(),
                compose.HOST_OVERRIDE: compose.render_host_override(), compose.EXAMPLE_ENV: compose.render_example_env()}
    for path, text in rendered.items():
        assert path.read_text() == text, f"{path.name} differs from the render: run `cdc compose` and commit the result"


def test_one_database_container_per_service_on_the_native_ports(monkeypatch):
    monkeypatch.delenv("CDC_PORT_BASE", raising=False)
    native = StackSettings.from_env()
    rendered = yaml.safe_load(compose.render_compose())
    ports = yaml.safe_load(compose.render_ports_override())["services"]
    for svc in current().services:
        assert rendered["services"][f"{svc.name}-db"]["environment"]["SERVICE"] == svc.name
        var = f"CDC_{svc.env_prefix}_PG_PORT"
        assert ports[f"{svc.name}-db"]["ports"] == [f"127.0.0.1:${{{var}:-{native.pg_ports[svc.name]}}}:5432"]
    kafka = f"${{CDC_KAFKA_PORT:-{native.kafka_port}}}"
    assert ports["kafka"]["ports"] == [f"127.0.0.1:{kafka}:{kafka}"]
    assert ports["connect"]["ports"] == [f"127.0.0.1:${{CDC_CONNECT_PORT:-{native.connect_port}}}:8083"]


def test_host_override_listens_on_loopback_at_the_published_ports():
    """Host networking: each container listens where the ports override would publish it."""
    ports = yaml.safe_load(compose.render_ports_override())["services"]
    host = yaml.safe_load(compose.render_host_override())["services"]
    assert set(host) == set(ports) and all(c["network_mode"] == "host" for c in host.values())
    for svc in current().services:
        env = host[f"{svc.name}-db"]["environment"]
        assert env["PG_LISTEN"] == "127.0.0.1"
        assert ports[f"{svc.name}-db"]["ports"] == [f"127.0.0.1:{env['PG_PORT']}:5432"]
        connect = host["connect"]["environment"]
        assert (connect[f"CDC_{svc.env_prefix}_DB_HOST"], connect[f"CDC_{svc.env_prefix}_DB_PORT"]) == \
            ("127.0.0.1", env["PG_PORT"])
    assert host["kafka"]["environment"]["KAFKA_CLIENT_ADVERTISED"] == host["connect"]["environment"]["BOOTSTRAP_SERVERS"]


def test_connect_container_gets_every_variable_the_connector_configs_use():
    env = yaml.safe_load(compose.render_compose())["services"]["connect"]["environment"]
    used = {m for c in configs.load_all() for v in c.config.values() for m in re.findall(r"\$\{env:([A-Z0-9_]+)\}", v)}
    # CDC_<SERVICE>_SYSTEM_ID: the Connect container's entrypoint reads it from each CDC_<SERVICE>_DB_HOST
    derived = {f"{k.removesuffix('_DB_HOST')}_SYSTEM_ID" for k in env if k.endswith("_DB_HOST")}
    assert used and used <= set(env) | derived, f"missing in compose: {used - set(env) - derived}"
    secrets = {secret_name(s, k): "x" for s in current().services for k in ROLE_KINDS}
    secrets[kafka_secret_name(CONNECT)] = "x"
    assert used <= set(connect_worker_env(StackSettings.from_env(), secrets)), "native Connect lacks some"
