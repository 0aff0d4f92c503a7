"""docker-compose.yml is rendered from the same declarations as the native stack (`cdc compose`):
the committed file must equal the render, and the render must hold what Connect needs."""
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
    assert compose.COMPOSE_FILE.read_text() == compose.render_compose(), "run `cdc compose` and commit the result"
    assert compose.EXAMPLE_ENV.read_text() == compose.render_example_env(), "run `cdc compose` and commit the result"


def test_one_database_container_per_service_on_the_native_ports(monkeypatch):
    monkeypatch.delenv("CDC_PORT_BASE", raising=False)
    native = StackSettings.from_env()
    rendered = yaml.safe_load(compose.render_compose())
    for svc in current().services:
        container = rendered["services"][f"{svc.name}-db"]
        assert container["ports"] == [f"127.0.0.1:{native.pg_ports[svc.name]}:5432"]
        assert container["environment"]["SERVICE"] == svc.name
    assert rendered["services"]["kafka"]["ports"] == [f"127.0.0.1:{native.kafka_port}:{native.kafka_port}"]
    assert rendered["services"]["connect"]["ports"] == [f"127.0.0.1:{native.connect_port}:8083"]


def test_connect_container_gets_every_variable_the_connector_configs_use():
    env = yaml.safe_load(compose.render_compose())["services"]["connect"]["environment"]
    used = {m for c in configs.load_all() for v in c.config.values() for m in re.findall(r"\$\{env:([A-Z0-9_]+)\}", v)}
    assert used and used <= set(env), f"missing in compose: {used - set(env)}"
    secrets = {secret_name(s, k): "x" for s in current().services for k in ROLE_KINDS}
    secrets[kafka_secret_name(CONNECT)] = "x"
    assert used <= set(connect_worker_env(StackSettings.from_env(), secrets)), "native Connect lacks some"
