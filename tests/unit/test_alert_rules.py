"""The alert rules name only metrics the code exports (a renamed metric would leave its alert
silent for ever); promtool checks their syntax and behaviour (`make alerts-check`)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "observe" / "alerts" / "rules.yml"
CODE = ("streams", "cli", "observe", "connectors")
pytestmark = pytest.mark.unit


def _exported() -> set[str]:
    found: set[str] = set()
    for folder in CODE:
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text()
            found |= set(re.findall(r'"(cdc_[a-z_]+)"', text))
            # gauges named from a table of suffixes: Gauge(f"cdc_slot_{key}", ...) for key in (("retained_bytes", ...
            for prefix in re.findall(r'f"(cdc_[a-z_]+_)\{key\}"', text):
                found |= {prefix + suffix for suffix in re.findall(r'\("([a-z_]+)", "', text)}
    return found


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_every_metric_an_alert_reads_is_exported_by_the_code() -> None:
    exported = _exported()
    assert "cdc_sagas_stuck" in exported and "cdc_slot_retained_bytes" in exported, sorted(exported)
    missing = {r["alert"]: sorted(set(re.findall(r"cdc_[a-z_]+", r["expr"])) - exported) for r in _rules()}
    assert not {a: m for a, m in missing.items() if m}, f"alerts on metrics nobody exports: {missing}"


def test_every_alert_says_what_to_do_and_how_urgent() -> None:
    for rule in _rules():
        assert rule["labels"]["severity"] in ("page", "ticket"), rule
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule


def test_the_promtool_unit_tests_cover_every_alert() -> None:
    tested = {t["alertname"] for test in yaml.safe_load((RULES.parent / "rules_test.yml").read_text())["tests"]
              for t in test["alert_rule_test"]}
    assert tested == {r["alert"] for r in _rules()}, f"untested alerts: {({r['alert'] for r in _rules()}) - tested}"
