"""The front door cannot drift from the code: every `make X` and `cdc X ...` that README.md and docs/*.md show
exists (a Makefile target; a command of the CLI's tree, with its options), and every setting the code reads is in
the README's table. A failure names the file, the line and what is missing."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

from cli.main import app
from tests.docs_commands import REPO, Snippet, all_snippets, parse

SEPARATORS = re.compile(r";|&&|\|\||\||\(|\)|`")
SUBSTITUTION = re.compile(r"\$\([^()]*\)")
QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PREFIXES = {"time", "sudo", "exec", "env"}
MAKE_BUILTINS = {"MAKEFILE_LIST", "CURDIR", "MAKE", "MAKEFLAGS"}


def simple_commands(text: str) -> list[list[str]]:
    """The words of each simple command in a shell line: quoted strings and $(...) count as one word, a
    comment ends the line, leading VAR=value and `time`/`sudo` are dropped (`make` in `apt-get install make`
    is a package, not a command)."""
    text = QUOTED.sub("ARG", SUBSTITUTION.sub("ARG", text))
    commands = []
    for part in SEPARATORS.split(text.split(" #", 1)[0]):
        words = [w.strip("[]") for w in part.split() if w.strip("[]")]
        while words and (ASSIGNMENT.match(words[0]) or words[0] in PREFIXES):
            words = words[1:]
        if words:
            commands.append(words)
    return commands


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.M))


def make_commands(snippets: list[Snippet]) -> list[tuple[Snippet, list[str]]]:
    """Each `make ...` shown, with the targets it names (options and VAR=value left out)."""
    found = []
    for s in snippets:
        for words in simple_commands(s.text):
            targets = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
            if words[0] == "make" and targets:
                found.append((s, targets))
    return found


def _options(cmd: Any) -> list[Any]:
    # duck-typed: typer may bring its own copy of click, so isinstance(click.Option) does not hold
    return [p for p in cmd.params if getattr(p, "param_type_name", "") == "option"]


def check_cdc(words: list[str], root: Any) -> str | None:
    """None if `cdc <words>` names a command of the tree and options it takes, else what is wrong."""
    cmd, path = root, ["cdc"]
    positional_seen = False
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            if name in ("--help", "-h") or cmd.context_settings.get("ignore_unknown_options"):
                i += 1
                continue
            option = next((p for p in _options(cmd) if name in (*p.opts, *p.secondary_opts)), None)
            if option is None:
                known = sorted(o for p in _options(cmd) for o in (*p.opts, *p.secondary_opts))
                return f"`{' '.join(path)}` has no option {name} (it has: {', '.join(known) or 'none'})"
            i += 2 if not option.is_flag and "=" not in word and not option.count else 1
            continue
        if hasattr(cmd, "commands") and not positional_seen:
            sub = cmd.commands.get(word)
            if sub is None:
                return f"`{' '.join(path)}` has no command {word} (it has: {', '.join(sorted(cmd.commands))})"
            cmd, path = sub, [*path, word]
        else:
            positional_seen = True
        i += 1
    return None


def cdc_commands(snippets: list[Snippet]) -> list[tuple[Snippet, list[str]]]:
    return [(s, words[1:]) for s in snippets for words in simple_commands(s.text) if words[0].split("/")[-1] == "cdc"]


def test_every_make_target_the_docs_name_exists() -> None:
    targets = make_targets()
    missing = [f"{s.where()}: `make {' '.join(t)}`: no target {t_}" for s, t in make_commands(all_snippets())
               for t_ in t if t_ not in targets]
    assert not missing, "the docs name make targets the Makefile lacks:\n" + "\n".join(missing)


def test_every_cdc_command_the_docs_name_exists_with_its_options() -> None:
    root = typer.main.get_command(app)
    wrong = [f"{s.where()}: `cdc {' '.join(w)}`: {problem}" for s, w in cdc_commands(all_snippets())
             if (problem := check_cdc(w, root)) is not None]
    assert not wrong, "the docs name cdc commands or options the CLI lacks:\n" + "\n".join(wrong)


def test_the_docs_show_commands_at_all() -> None:
    """The extraction itself works: a check that finds nothing cannot fail."""
    snippets = all_snippets()
    makes = {t for _, ts in make_commands(snippets) for t in ts}
    cdcs = {" ".join(w[:2]) for _, w in cdc_commands(snippets)}
    assert {"demo", "test", "down", "wipe", "observe", "backfill", "bench"} <= makes, makes
    assert {"db stop", "db start", "observe saga", "topics read"} <= cdcs, cdcs


def test_the_checks_catch_what_is_not_there(tmp_path: Path, monkeypatch) -> None:
    """A wrong target, sub-command or option is reported with its file and line."""
    root = typer.main.get_command(app)
    assert check_cdc(["observe", "--watch"], root) is None
    assert check_cdc(["observe", "saga", "ID"], root) is None
    assert "no command sagaz" in (check_cdc(["observe", "sagaz"], root) or "")
    assert "no option --wach" in (check_cdc(["observe", "--wach"], root) or "")
    assert "no option --max-failures" in (check_cdc(["observe", "sagas", "--max-failures", "3"], root) or "")
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n\n```bash\nmake up deploy \\\n  workerz\n```\n\nthen `cdc db stopp orders`\n")
    snippets, _ = parse(doc)
    monkeypatch.setattr(Snippet, "where", lambda s: f"doc.md:{s.line}")
    (s, targets), = make_commands(snippets)
    assert (s.where(), [t for t in targets if t not in make_targets()]) == ("doc.md:4", ["workerz"])
    (s, words), = cdc_commands(snippets)
    assert s.where() == "doc.md:8" and "no command stopp" in (check_cdc(words, root) or "")


def _code_settings() -> set[str]:
    """Every CDC_* variable the code names whole (not built from a service's name)."""
    names: set[str] = set()
    for pkg in ("stack", "services", "schemas", "connectors", "streams", "cli", "observe", "bench"):
        for path in (REPO / pkg).rglob("*.py"):
            names |= set(re.findall(r"[\"'](CDC_[A-Z0-9_]+)[\"']", path.read_text()))
    return names


def _make_settings() -> set[str]:
    """Variables the Makefile reads but does not set itself (KEEP, PAIR, ...), and those it only defaults (?=)."""
    text = (REPO / "Makefile").read_text()
    used = set(re.findall(r"\$\(([A-Z_]+)\)", text)) | set(re.findall(r"\$\$\{?([A-Z_]+)", text))
    assigned = set(re.findall(r"^([A-Z_]+)\s*:?=", text, re.M))
    defaulted = set(re.findall(r"^([A-Z_]+)\s*\?=", text, re.M))
    return (used - assigned - MAKE_BUILTINS) | defaulted


def test_every_setting_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    settings = _code_settings() | _make_settings()
    assert {"CDC_PG_BIN", "CDC_SAGA_HOUSEKEEPING_EVERY", "KEEP", "BENCH_ARGS", "PAIR"} <= settings, settings
    missing = sorted(name for name in settings if f"`{name}`" not in readme)
    assert not missing, f"README.md's settings table lacks: {', '.join(missing)}"
