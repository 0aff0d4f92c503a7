"""The pytest plugin's pure parts: where the stack is looked for, and how a named stack part maps
to its process (tests/integration/test_toy_domain.py runs the plugin for real from outside the tree)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from cdc_testing.faults import Faults
from cdc_testing.stack import TestStack

pytestmark = pytest.mark.unit
pytest_plugins = ["pytester"]

PROBE = """
def test_where(cdc_stack_settings_probe):
    pass
"""


def _resolved(pytester: pytest.Pytester, *args: str, ini: str = "") -> tuple[str, int]:
    pytester.makeini(f"[pytest]\n{ini}")
    pytester.makeconftest("""
import pytest
from cdc_testing.plugin import _stack_of

@pytest.fixture
def cdc_stack_settings_probe(pytestconfig):
    s = _stack_of(pytestconfig)
    print(f"STACK={s.stack_dir} PORT={s.port_base}")
""")
    pytester.makepyfile(PROBE)
    result = pytester.runpytest_inprocess("-s", "-p", "no:cacheprovider", *args)
    line = next(out for out in result.outlines if "STACK=" in out)
    stack, port = line.split("STACK=", 1)[1].split(" PORT=")
    return stack, int(port)


def test_the_command_line_wins_over_the_environment_and_the_ini(pytester, monkeypatch):
    monkeypatch.setenv("CDC_STACK_DIR", "/env-stack")
    monkeypatch.setenv("CDC_PORT_BASE", "21000")
    stack, port = _resolved(pytester, "--cdc-stack-dir", "/cli-stack", "--cdc-port-base", "22000",
                            ini="cdc_stack_dir = ini-stack\ncdc_port_base = 23000")
    assert (stack, port) == ("/cli-stack", 22000)


def test_the_environment_wins_over_the_ini(pytester, monkeypatch):
    monkeypatch.setenv("CDC_STACK_DIR", "/env-stack")
    monkeypatch.setenv("CDC_PORT_BASE", "21000")
    assert _resolved(pytester, ini="cdc_stack_dir = ini-stack\ncdc_port_base = 23000") == ("/env-stack", 21000)


def test_without_settings_a_stack_of_its_own_beside_the_tests(pytester, monkeypatch):
    monkeypatch.delenv("CDC_STACK_DIR", raising=False)
    monkeypatch.delenv("CDC_PORT_BASE", raising=False)
    stack, port = _resolved(pytester)
    assert (Path(stack), port) == (pytester.path / ".cdc-stack", 30400)


def test_named_parts_map_to_their_pid_files(tmp_path):
    run, pg = tmp_path / "run", tmp_path / "pg" / "orders"
    run.mkdir()
    pg.mkdir(parents=True)
    (pg / "PG_VERSION").write_text("15\n")
    for name in ("kafka", "connect", "connect-2", "component-mailer"):
        (run / f"{name}.pid").write_text(f"{os.getpid()}\n")
    faults = Faults(TestStack(tmp_path, 30400))
    assert faults.parts() == ["connect", "connect-2", "kafka", "component:mailer", "postgres:orders"]
    assert faults._pid_file("postgres:orders") == pg / "postmaster.pid"
    assert faults._pid_file("component:mailer") == run / "component-mailer.pid"
    assert faults._pid_file("connect-2") == run / "connect-2.pid"


def test_hitting_a_part_that_is_not_running_says_which_parts_exist(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "kafka.pid").write_text("999999999\n")  # no such process
    with pytest.raises(AssertionError, match=r"kafka is not running .*parts: \['kafka'\]"):
        Faults(TestStack(tmp_path, 30400)).kill("kafka")
