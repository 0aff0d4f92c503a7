"""The project's own checks of connector configs (before Connect sees them)."""
from __future__ import annotations

import json

import pytest

from connectors import configs, rules
from services.registry import current


def test_shipped_configs_pass_and_cover_every_service():
    conns = configs.load_all()
    assert rules.check_all(conns) == []
    assert {c.topic_prefix for c in conns} == {s.name for s in current().services}


def test_shipped_configs_hold_no_secret_or_host():
    for path in configs.CONFIG_DIR.glob("*.json"):
        doc = json.loads(path.read_text())
        cfg = doc.get("config", doc)
        for key in ("database.password", "database.hostname", "database.port"):
            if key in cfg:
                assert cfg[key].startswith("${env:"), f"{path.name}: {key} must be a placeholder"


def test_captured_tables_match_the_service_catalog():
    by_prefix = {c.topic_prefix: c for c in configs.load_all()}
    for svc in current().services:
        topics = by_prefix[svc.name].row_topics()
        for table in svc.captured_tables:
            assert f"{svc.name}.public.{table}" in topics


def _orders(**changes):
    conn = next(c for c in configs.load_all() if c.name == "orders-source")
    cfg = {**conn.config, **{k: v for k, v in changes.items() if v is not None}}
    for k, v in changes.items():
        if v is None:
            cfg.pop(k)
    return configs.ConnectorFile(conn.name, cfg, conn.routed_topics)


@pytest.mark.parametrize("changes, key", [
    ({"plugin.name": "decoderbufs"}, "plugin.name"),
    ({"table.include.list": None}, "table.include.list"),
    ({"table.include.list": "public.customers,public.debezium_heartbeat"}, "table.include.list"),
    ({"database.password": "secret"}, "database.password"),
    ({"publication.autocreate.mode": "filtered"}, "publication.autocreate.mode"),
    ({"slot.name": "Bad-Slot"}, "slot.name"),
    ({"poll.interval.ms": "500"}, "poll.interval.ms"),
    ({"heartbeat.interval.ms": "0"}, "heartbeat.interval.ms"),
    ({"transforms": "outbox"}, "transforms.sysid.static.value"),
    ({"transforms": "unwrap", "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState"},
     "transforms.unwrap.type"),
])
def test_bad_config_is_refused_naming_the_key(changes, key):
    errors = rules.check(_orders(**changes))
    assert errors and any(f": {key}:" in e for e in errors), errors


def test_shared_slot_is_refused():
    conns = configs.load_all()
    clash = configs.ConnectorFile(conns[1].name, {**conns[1].config, "slot.name": conns[0].config["slot.name"]},
                                  conns[1].routed_topics)
    errors = rules.check_all([conns[0], clash])
    assert any("slot.name" in e and "unique" in e for e in errors), errors


def test_topics_of_a_connector():
    orders = next(c for c in configs.load_all() if c.name == "orders-source")
    assert "orders.public.customers" in orders.all_topics()
    assert "orders.public.outbox" not in orders.all_topics()
    assert "outbox.event.order" in orders.all_topics()
    assert "__debezium-heartbeat.orders" in orders.all_topics()


def test_invalid_base_file_is_refused(tmp_path):
    (tmp_path / "base.json").write_text("{nope")
    with pytest.raises(ValueError, match="base.json: not valid JSON"):
        configs.load_all(tmp_path)


def test_private_columns_are_derived_into_the_column_exclusion():
    for svc in current().services:
        conn = next(c for c in configs.load_all() if c.name == svc.connector)
        excluded = set(filter(None, conn.config.get("column.exclude.list", "").split(",")))
        assert excluded == {f"public.{t}.{c}" for t, cols in svc.private_columns.items() for c in cols}
    orders = next(c for c in configs.load_all() if c.name == "orders-source")
    assert {"public.customers.document_number", "public.customers.phone"} <= set(
        orders.config["column.exclude.list"].split(","))


def test_the_saga_store_never_publishes_start_payloads():
    """Saga states may be followed on Kafka; their start payloads (personal data in a sign-up) may not."""
    store = next(c for c in configs.load_all() if c.name == "orchestrator-source")
    assert "public.saga_instances.payload" in store.config["column.exclude.list"].split(",")


def test_a_connector_that_would_publish_a_private_column_is_refused_naming_it():
    orders = next(c for c in configs.load_all() if c.name == "orders-source")
    leaky = configs.ConnectorFile(orders.name, {**orders.config, "column.exclude.list": "public.customers.phone"},
                                  orders.routed_topics)
    errors = rules.check(leaky)
    assert any("public.customers.document_number" in e and "private" in e for e in errors), errors
    assert not any("public.customers.phone" in e for e in errors), errors
