"""docker-compose.yml describes the same topology as the native stack: the same services, ports,
variable names and connector placeholders."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from connectors import configs
from services.catalog import SERVICES
from stack.envfile import connect_worker_env
from stack.secrets import ROLE_KINDS, secret_name
from stack.settings import DEFAULT_PORT_BASE, StackSettings

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())


def test_one_database_container_per_service_on_the_native_ports(monkeypatch):
    monkeypatch.delenv("CDC_PORT_BASE", raising=False)
    native = StackSettings.from_env()
    assert native.pg_ports["orders"] == DEFAULT_PORT_BASE
    for svc in SERVICES:
        container = COMPOSE["services"][f"{svc.name}-db"]
        assert container["ports"] == [f"127.0.0.1:{native.pg_ports[svc.name]}:5432"]
        assert container["environment"]["SERVICE"] == svc.name
        joined = " ".join(container["command"])
        for setting in ("wal_level=logical", "track_commit_timestamp=on", "max_slot_wal_keep_size"):
            assert setting in joined
    assert COMPOSE["services"]["kafka"]["ports"] == [f"127.0.0.1:{native.kafka_port}:{native.kafka_port}"]
    assert COMPOSE["services"]["connect"]["ports"] == [f"127.0.0.1:{native.connect_port}:8083"]


def test_connect_container_gets_every_variable_the_connector_files_use():
    env = COMPOSE["services"]["connect"]["environment"]
    used = {m for c in configs.load_all() for v in c.config.values() for m in re.findall(r"\$\{env:([A-Z0-9_]+)\}", v)}
    assert used and used <= set(env), f"missing in compose: {used - set(env)}"
    assert used <= set(connect_worker_env(StackSettings.from_env(), _fake_secrets())), "native Connect lacks some"


def test_secret_names_are_the_native_ones():
    example = (Path(__file__).resolve().parents[2] / "stack/docker/example.env").read_text()
    for svc in SERVICES:
        for kind in ROLE_KINDS:
            assert f"{secret_name(svc, kind)}=" in example


def _fake_secrets() -> dict[str, str]:
    return {secret_name(s, k): "x" for s in SERVICES for k in ROLE_KINDS}
