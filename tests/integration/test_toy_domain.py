"""The framework is one: a domain written outside this repository's services (tests/toy_domain),
installed with pip as a user installs theirs, is discovered, migrated, captured, and runs its
replication pair and its two-step saga in both modes, without a line of framework code changed."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import psycopg
import pytest

from cdc_testing.polling import poll
from cdc_testing.workers import WorkerProcess, diagnose
from tests.integration.conftest import REPO, read_make_env
from tests.integration.saga_helpers import coordinator, one, saga_worker

# destructive: enabling a domain restarts Kafka Connect (it reads connector secrets from its environment)
pytestmark = [pytest.mark.integration, pytest.mark.destructive]
MODES = ("orchestration", "choreography")


@pytest.fixture(scope="module")
def toy_env(tmp_path_factory) -> dict[str, str]:
    """pip-install the toy domain into a folder of its own, enable only it, bring its part of the stack up."""
    work = tmp_path_factory.mktemp("toy")
    source = shutil.copytree(REPO / "tests" / "toy_domain", work / "src")  # pip builds in the source tree
    site = work / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(source)],
                         capture_output=True, text=True)
    assert res.returncode == 0, f"pip install of the toy domain failed:\n{res.stdout}{res.stderr}"
    env = {"PYTHONPATH": str(site), "CDC_DOMAINS": "toy"}
    for verb in (["up"], ["deploy"]):
        res = subprocess.run([sys.executable, "-m", "cli", *verb], cwd=REPO, env={**os.environ, **env},
                             capture_output=True, text=True)
        assert res.returncode == 0, \
            f"`cdc {' '.join(verb)}` with the toy domain failed:\n{res.stdout[-3000:]}{res.stderr[-3000:]}"
    return {**read_make_env(), **env}


def _books(env: dict[str, str], titles: dict[int, str], copies: int) -> None:
    with psycopg.connect(env["TOYBOOKS_DATABASE_URL"]) as conn:
        for book_id, title in titles.items():
            conn.execute("INSERT INTO books (id, title, purchase_price) VALUES (%s, %s, 12.50)", (book_id, title))
    with psycopg.connect(env["TOYSHELF_DATABASE_URL"]) as conn:
        for book_id in titles:
            conn.execute("INSERT INTO copies (toybooks_book_id, available) VALUES (%s, %s)", (book_id, copies))


def _lend(env: dict[str, str], book_id: int) -> int:
    """The toy initiator's local step: the loan and its event, one transaction."""
    with psycopg.connect(env["TOYBOOKS_DATABASE_URL"]) as conn:
        row = conn.execute("INSERT INTO loans (book_id) VALUES (%s) RETURNING id", (book_id,)).fetchone()
        assert row is not None
        conn.execute("INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES (%s, 'loan', %s, "
                     "'LoanRequested', %s)", (uuid.uuid4(), str(row[0]), json.dumps({"loan_id": row[0], "book_id": book_id})))
    return int(row[0])


def _saga_state(env: dict[str, str], loan_id: int) -> str | None:
    row = one(env["ORCHESTRATOR_OBSERVER_URL"], "SELECT state FROM saga_instances WHERE business_key = %s "
              "AND split_part(saga_type, '/', 1) = 'lend-book'", (str(loan_id),))
    return row[0] if row else None


def test_a_pip_installed_domain_replicates_without_its_private_column(toy_env, tmp_path, reader):
    book = int(uuid.uuid4().int % 10**9)
    topic = reader("toybooks.public.books")
    worker = WorkerProcess("books-to-shelf", toy_env, tmp_path)
    try:
        worker.wait_healthy()
        _books(toy_env, {book: "Dune"}, copies=1)
        replica = poll(lambda: one(toy_env["TOYSHELF_DATABASE_URL"], "SELECT title FROM books WHERE toybooks_book_id = %s",
                                   (book,)), lambda r: r is not None, 90, f"book {book} replicated into toyshelf")
        assert replica == ("Dune",)
        cols = [r[0] for r in psycopg.connect(toy_env["TOYSHELF_DATABASE_URL"]).execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'books'").fetchall()]
        assert "purchase_price" not in cols
        msg = topic.wait_for(lambda m: m.key() is not None and str(book).encode() in m.key(), 1, 60, f"book {book} captured")[0]
        after = json.loads(msg.value())["after"]
        assert after["title"] == "Dune" and "purchase_price" not in after, f"a private column reached Kafka: {after}"
    finally:
        worker.stop()


@pytest.mark.parametrize("mode", MODES)
def test_a_pip_installed_domain_runs_its_saga(toy_env, tmp_path, mode):
    book, gone = (int(uuid.uuid4().int % 10**9) for _ in range(2))
    _books(toy_env, {book: "Emma", gone: "Ulysses"}, copies=1)
    with psycopg.connect(toy_env["TOYSHELF_DATABASE_URL"]) as conn:
        conn.execute("UPDATE copies SET available = 0 WHERE toybooks_book_id = %s", (gone,))
    workers = [saga_worker(n, mode, toy_env, tmp_path) for n in (coordinator(mode), "toybooks", "toyshelf")]
    try:
        for w in workers:
            w.wait_healthy()
        lent, refused = _lend(toy_env, book), _lend(toy_env, gone)
        for loan, expected in ((lent, "COMPLETED"), (refused, "COMPENSATED")):
            poll(lambda loan=loan: _saga_state(toy_env, loan), lambda s, e=expected: s == e, 90,
                 f"lend-book saga of loan {loan} {expected} ({mode})\n{diagnose()}")
        handed = one(toy_env["TOYSHELF_OBSERVER_URL"], "SELECT available FROM copies WHERE toybooks_book_id = %s", (book,))
        assert handed == (0,), "the copy was handed out"
        status = dict(psycopg.connect(toy_env["TOYBOOKS_DATABASE_URL"]).execute(
            "SELECT id, status FROM loans WHERE id = ANY(%s)", ([lent, refused],)).fetchall())
        assert status == {lent: "PENDING", refused: "CANCELLED"}, "the refused loan was compensated, the other not"
    finally:
        for w in workers:
            w.stop()


def test_a_users_own_repository_tests_the_domain_with_the_pytest_plugin(toy_env, cdc_stack, tmp_path):
    """examples/service-tests, copied out of this repository, run by pytest as in a user's own
    repository: the fixtures come from the installed package's entry point, not from this tree."""
    project = shutil.copytree(REPO / "examples" / "service-tests", tmp_path / "user-repo")
    env = {**os.environ, "PYTHONPATH": toy_env["PYTHONPATH"], "CDC_STACK_DIR": str(cdc_stack.stack_dir),
           "CDC_PORT_BASE": str(cdc_stack.port_base)}
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--cdc-no-start"],
                         cwd=project, env=env, capture_output=True, text=True, timeout=540)
    assert res.returncode == 0 and "2 passed" in res.stdout, \
        f"the user's tests should pass on the plugin (exit {res.returncode}):\n{res.stdout[-6000:]}{res.stderr[-3000:]}"
