"""Ports and run folders come from the environment, with defaults away from the usual ports."""
from __future__ import annotations

import pytest

from services.registry import current
from stack.envfile import stack_env
from stack.secrets import load_or_create
from stack.settings import StackSettings


def test_defaults_avoid_the_usual_ports(monkeypatch):
    for var in ("CDC_PORT_BASE", "CDC_KAFKA_PORT", "CDC_CONNECT_PORT", "CDC_STACK_DIR"):
        monkeypatch.delenv(var, raising=False)
    s = StackSettings.from_env()
    ports = [*s.pg_ports.values(), s.kafka_port, s.controller_port, s.connect_port]
    assert len(set(ports)) == len(ports)
    assert not {5432, 9092, 9093, 8083} & set(ports)
    assert s.run_dir.name == "dev"


def test_port_base_and_single_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("CDC_PORT_BASE", "30000")
    monkeypatch.setenv("CDC_KAFKA_PORT", "31111")
    monkeypatch.setenv("CDC_STACK_DIR", str(tmp_path))
    s = StackSettings.from_env()
    assert s.kafka_port == 31111 and s.connect_port == 30002
    assert all(30100 <= p < 30500 for p in s.pg_ports.values()), s.pg_ports
    assert s.port_env_names()[31111] == "CDC_KAFKA_PORT"
    assert s.run_dir == tmp_path


def test_bad_port_is_refused(monkeypatch):
    monkeypatch.setenv("CDC_CONNECT_PORT", "http")
    with pytest.raises(SystemExit, match="CDC_CONNECT_PORT"):
        StackSettings.from_env()


def test_env_lists_a_database_url_per_service_and_the_kafka_addresses(monkeypatch, tmp_path):
    monkeypatch.setenv("CDC_STACK_DIR", str(tmp_path))
    s = StackSettings.from_env()
    secrets = load_or_create(s.secrets_file)
    env = stack_env(s, secrets)
    for svc in current().services:
        assert env[f"{svc.env_prefix}_DATABASE_URL"].startswith(f"postgresql://{svc.role}:")
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == f"127.0.0.1:{s.kafka_port}"
    assert env["CONNECT_URL"] == f"http://127.0.0.1:{s.connect_port}"
    assert oct(s.secrets_file.stat().st_mode & 0o777) == "0o600"
    assert load_or_create(s.secrets_file) == secrets, "passwords are generated once and reused"


def test_pid_file_of_a_reused_pid_is_not_ours(tmp_path):
    """After a reboot the pid in a pid file may belong to another program: its start time differs."""
    import os

    from stack.processes import read_pid

    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{os.getpid()} 1\n")  # our pid, but not our start time
    assert read_pid(pid_file) is None
    from stack.processes import _start_time

    pid_file.write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
    assert read_pid(pid_file) == os.getpid()
