"""Read models as a domain declares them: names derived once, validated with the registry; a
table keyed by an entity column becomes Debezium's message.key.columns."""
from __future__ import annotations

from dataclasses import replace

import pytest

from connectors.configs import for_service, load_base
from services.registry import Domain, RegistryError, ServiceSpec, load
from services.shortener.analytics.clicks import CLICKS_READ_MODEL


def test_names_are_derived_from_the_read_models_name():
    m = CLICKS_READ_MODEL
    assert (m.group_id, m.dead_letter_topic, m.worker_name) == \
        ("cdc-readmodel-link-clicks", "dlq.readmodel.link-clicks", "readmodel-link-clicks")
    assert m.changelog_topic("totals") == "cdc-readmodel-link-clicks-totals-changelog"   # Faust's <app id>-<table>-changelog
    assert len(m.changelog_topics) == len(m.counters) == 5


def test_a_read_model_needs_a_known_service_and_a_name_of_its_own():
    services = (ServiceSpec("shortener"), ServiceSpec("analytics"))
    assert load(installed={"d": Domain("d", services, read_models=(CLICKS_READ_MODEL,))}).read_model("link-clicks")
    with pytest.raises(RegistryError, match="unknown service 'analytics'"):
        load(installed={"d": Domain("d", services[:1], read_models=(CLICKS_READ_MODEL,))})
    with pytest.raises(RegistryError, match="read model names repeat"):
        load(installed={"d": Domain("d", services, read_models=(CLICKS_READ_MODEL, CLICKS_READ_MODEL))})
    with pytest.raises(ValueError, match="read model name"):
        replace(CLICKS_READ_MODEL, name="Bad_Name")


def test_event_keys_become_the_connectors_message_key_columns():
    svc = ServiceSpec("shop", captured_tables=("clicks", "carts"), event_keys={"clicks": ("url_id",), "carts": ("a", "b")})
    assert for_service(svc, load_base()).config["message.key.columns"] == "public.carts:a,b;public.clicks:url_id"
    assert "message.key.columns" not in for_service(ServiceSpec("plain"), load_base()).config
    with pytest.raises(ValueError, match="event key of 'orders'"):
        ServiceSpec("shop", captured_tables=("clicks",), event_keys={"orders": ("id",)})
