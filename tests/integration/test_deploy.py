"""Deploying is idempotent, and an invalid config is refused with a message naming the key,
leaving the running connectors untouched."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from connectors import configs
from connectors.connect_api import ConnectClient
from connectors.deploy import DeployRefused, deploy
from stack.kafka_client import ADMIN, access

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _connectors_snapshot(client: ConnectClient) -> dict[str, tuple[dict, str, list[str]]]:
    out = {}
    for name in client.names():
        st = client.status(name)
        out[name] = (client.config(name), st.connector, st.tasks)
    return out


@pytest.fixture
def client(stack_env):
    c = ConnectClient(stack_env["CONNECT_URL"])
    yield c
    c.close()


def test_deploy_twice_changes_nothing(stack_env, client):
    before = _connectors_snapshot(client)
    assert before, "expected the deployed connectors (make deploy)"
    result = deploy(configs.load_all(), stack_env["CONNECT_URL"], access(stack_env, ADMIN))
    assert result.created == [] and result.updated == []
    assert sorted(result.unchanged) == sorted(before)
    assert result.topics_created == []
    assert all(s.running for s in result.states)
    assert _connectors_snapshot(client) == before


def _orders_with(**changes: str | None) -> configs.ConnectorFile:
    orders = next(c for c in configs.load_all() if c.name == "orders-source")
    cfg = dict(orders.config)
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    return configs.ConnectorFile(orders.name, cfg, orders.routed_topics)


@pytest.mark.parametrize("changes, stage, key", [
    ({"plugin__name": "decoderbufs"}, "project checks", "plugin.name"),
    ({"table__include__list": None}, "project checks", "table.include.list"),
    ({"database__password": "hunter2"}, "project checks", "database.password"),
    # Debezium files connection failures under database.hostname; the message names the database
    ({"database__dbname": "no_such_db"}, "Kafka Connect validation", 'database "no_such_db" does not exist'),
])
def test_invalid_config_is_refused_naming_the_key(stack_env, client, changes, stage, key):
    before = _connectors_snapshot(client)
    with pytest.raises(DeployRefused) as refused:
        deploy([_orders_with(**changes)], stack_env["CONNECT_URL"], access(stack_env, ADMIN))
    assert refused.value.stage == stage
    assert any(key in e for e in refused.value.errors), refused.value.errors
    assert _connectors_snapshot(client) == before


def test_connect_itself_rejects_a_wrong_plugin_name(client):
    """Connect's own validator names the key, too (the project check runs first in deploy)."""
    errors = client.validate("orders-source", _orders_with(plugin__name="nosuchplugin").config)
    assert any("plugin.name" in e for e in errors), errors


def test_cli_refuses_with_exit_code_and_message(tmp_path, stack_env):
    bad = json.loads((configs.CONFIG_DIR / "base.json").read_text())
    bad["plugin.name"] = "decoderbufs"  # a base that every derived connector config inherits
    (tmp_path / "base.json").write_text(json.dumps(bad))
    env = {**stack_env, "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-m", "cli", "deploy", "--config-dir", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, env=env)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "plugin.name" in res.stderr and "nothing deployed" in res.stderr
