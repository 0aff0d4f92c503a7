"""The stack refuses PostgreSQL servers older than 15 with a message that says what to do."""
from __future__ import annotations

from pathlib import Path

import pytest

from stack.postgres import MIN_MAJOR, check_version, find_bin_dir
from stack.processes import StackError


@pytest.mark.parametrize(("text", "major"), [
    ("pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", 15),
    ("pg_ctl (PostgreSQL) 17.2\n", 17),
])
def test_supported_versions_pass(text: str, major: int) -> None:
    assert check_version(text, Path("/x/bin")) == major


def test_an_old_server_is_refused_naming_version_minimum_and_way_out() -> None:
    with pytest.raises(StackError) as err:
        check_version("pg_ctl (PostgreSQL) 14.10 (Ubuntu 14.10-0ubuntu0.22.04.1)", Path("/usr/lib/postgresql/14/bin"))
    message = str(err.value)
    assert "PostgreSQL 14 found in /usr/lib/postgresql/14/bin" in message, message
    assert f"{MIN_MAJOR} or newer" in message and "CDC_PG_BIN" in message, message


def test_unreadable_version_is_an_error_not_a_guess() -> None:
    with pytest.raises(StackError, match="could not tell the PostgreSQL version"):
        check_version("something else", Path("/x/bin"))


def _fake_bin(folder: Path, version: str) -> Path:
    folder.mkdir()
    (folder / "initdb").write_text("#!/bin/sh\n")
    pg_ctl = folder / "pg_ctl"
    pg_ctl.write_text(f"#!/bin/sh\necho 'pg_ctl (PostgreSQL) {version}'\n")
    pg_ctl.chmod(0o755)
    return folder


def test_cdc_pg_bin_is_checked_too(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CDC_PG_BIN", str(_fake_bin(tmp_path / "old", "13.9")))
    with pytest.raises(StackError, match="PostgreSQL 13 found"):
        find_bin_dir()
    monkeypatch.setenv("CDC_PG_BIN", str(_fake_bin(tmp_path / "new", "16.4")))
    assert find_bin_dir() == tmp_path / "new"
