"""The replication spec is validated at start-up, with the validator's message per field."""
from __future__ import annotations

import json

import pytest

from streams import spec as spec_mod

GOOD = {
    "name": "customers-to-inventory",
    "source": {"service": "orders", "table": "customers"},
    "target": {"service": "inventory", "table": "customers"},
    "key": {"id": "orders_customer_id"},
    "columns": {"name": "name"},
    "delete_policy": "delete",
}


def _load(tmp_path, *pairs):
    path = tmp_path / "replication.json"
    path.write_text(json.dumps({"pairs": list(pairs)}))
    return spec_mod.load(path)


def test_shipped_spec_is_valid_and_never_replicates_sensitive_columns():
    spec = spec_mod.load()
    assert {p.target.service for p in spec.pairs} == {"inventory", "invoicing", "shipping"}
    for pair in spec.pairs:
        assert not {"document_number", "phone"} & set(pair.columns), pair.name
        assert pair.group_id != spec.pairs[0].group_id or pair is spec.pairs[0]


@pytest.mark.parametrize("change, message", [
    ({"source": {"service": "nope", "table": "customers"}}, "unknown service"),
    ({"source": {"service": "orders", "table": "secrets"}}, "not captured"),
    ({"target": {"service": "orders", "table": "customers"}}, "same service"),
    ({"key": {"id": "customer_id"}}, "soft reference"),
    ({"columns": {}}, "at least 1"),
    ({"columns": {"name": "cdc_position"}}, "reserved"),
    ({"columns": {"name": "x", "email": "x"}}, "repeat"),
    ({"columns": {"Name": "name"}}, "identifier"),
    ({"delete_policy": "shred"}, "delete_policy"),
    ({"columns": {"name": "name", "phone": "phone"}}, "declares phone private"),
    ({"columns": {"document_number": "doc"}}, "declares document_number private"),
    ({"extra": 1}, "extra"),
])
def test_invalid_pair_is_refused_with_the_reason(tmp_path, change, message):
    with pytest.raises(spec_mod.SpecError, match=message):
        _load(tmp_path, {**GOOD, **change})


def test_two_pairs_writing_one_target_are_refused(tmp_path):
    with pytest.raises(spec_mod.SpecError, match="same target"):
        _load(tmp_path, GOOD, {**GOOD, "name": "other"})


def test_unknown_pair_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="customers-to-inventory"):
        spec_mod.load().pair("nope")
