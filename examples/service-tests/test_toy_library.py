"""What a team's own service tests look like with the cdc pytest plugin, for the toy library
domain (tests/toy_domain: toybooks lends books, toyshelf keeps a replica of them and hands
out copies). Run from a repository where the domain and this package are installed:
`pytest` (the stack is started once per session on its own ports, or reused when up)."""
from __future__ import annotations

import json
import uuid

import psycopg

from cdc_testing.waits import saga, wait_row, wait_saga_ended


def add_book(env: dict[str, str], title: str, copies: int = 1) -> int:
    book_id = uuid.uuid4().int % 10**9
    with psycopg.connect(env["TOYBOOKS_DATABASE_URL"]) as conn:
        conn.execute("INSERT INTO books (id, title, purchase_price) VALUES (%s, %s, 9.90)", (book_id, title))
    with psycopg.connect(env["TOYSHELF_DATABASE_URL"]) as conn:
        conn.execute("INSERT INTO copies (toybooks_book_id, available) VALUES (%s, %s)", (book_id, copies))
    return book_id


def lend(env: dict[str, str], book_id: int) -> int:
    """The service's command: the loan and its outbox event in one transaction."""
    with psycopg.connect(env["TOYBOOKS_DATABASE_URL"]) as conn:
        row = conn.execute("INSERT INTO loans (book_id) VALUES (%s) RETURNING id", (book_id,)).fetchone()
        assert row is not None
        conn.execute("INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) "
                     "VALUES (%s, 'loan', %s, 'LoanRequested', %s)",
                     (uuid.uuid4(), str(row[0]), json.dumps({"loan_id": row[0], "book_id": book_id})))
    return int(row[0])


def test_a_new_book_reaches_the_shelf_without_its_price(cdc_env, cdc_workers, cdc_events):
    captured = cdc_events("toybooks.public.books")
    cdc_workers.replication("books-to-shelf")
    cdc_workers.wait_healthy()

    book = add_book(cdc_env, "Dune")

    wait_row(cdc_env["TOYSHELF_DATABASE_URL"], "SELECT title FROM books WHERE toybooks_book_id = %s", (book,),
             expected=("Dune",), what=f"book {book} replicated to the shelf")
    event = captured.wait_for(lambda m: str(book).encode() in (m.key() or b""), 1, 60, f"book {book} captured")[0]
    assert "purchase_price" not in json.loads(event.value())["after"], "a private column reached Kafka"


def test_a_loan_completes_though_the_shelf_crashes_holding_its_command(cdc_env, cdc_workers, cdc_faults):
    book = add_book(cdc_env, "Emma")
    cdc_workers.saga("orchestrator")
    cdc_workers.saga("toybooks")
    shelf = cdc_workers.saga("toyshelf")
    cdc_workers.wait_healthy()
    cdc_faults.pause(shelf)  # so that the crash comes while the shelf holds the saga's command

    loan = lend(cdc_env, book)

    take_copy = 1  # the saga's second step, the shelf's
    cdc_faults.when(lambda: (view := saga(cdc_env, "lend-book", loan)) is not None and view.step == take_copy,
                    f"loan {loan}'s saga waiting on the shelf").kill(shelf)
    cdc_faults.heal()  # restarts the killed worker, as its supervisor would
    ended = wait_saga_ended(cdc_env, "lend-book", loan, timeout=180)
    assert ended.state == "COMPLETED", f"the loan should survive a crashed participant: {ended}"
    assert ("kill -9", "toyshelf") in cdc_faults.injected
