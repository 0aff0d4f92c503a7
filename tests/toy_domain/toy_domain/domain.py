"""toybooks owns books and lends them (the loan is its local step); toyshelf keeps a replica of
the books (keyed by toybooks_book_id) and hands out a copy (the pivot). No copy left: the loan is
cancelled. Nothing here is known to the framework: it is discovered through the entry point."""
from __future__ import annotations

from pathlib import Path

import psycopg
from pydantic import BaseModel

from schemas.saga import SagaCommand
from services.registry import Domain, ServiceSpec
from streams.sagas.definition import SagaDefinition, Step
from streams.sagas.plugin import SagaPlugin, SagaStart

HERE = Path(__file__).resolve().parent


class LoanRequested(BaseModel):
    loan_id: int
    book_id: int


async def cancel_loan(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> str | None:
    await conn.execute("UPDATE loans SET status = 'CANCELLED' WHERE id = %s AND status = 'PENDING'",
                       (cmd.payload["loan_id"],))
    return None


async def take_copy(conn: psycopg.AsyncConnection, cmd: SagaCommand) -> str | None:
    cur = await conn.execute("UPDATE copies SET available = available - 1 WHERE toybooks_book_id = %s "
                             "AND available > 0 RETURNING available", (cmd.payload["book_id"],))
    if await cur.fetchone() is None:
        return f"no copy of book {cmd.payload['book_id']} left"
    await conn.execute("INSERT INTO handed_out (saga_id, toybooks_book_id) VALUES (%s, %s)",
                       (cmd.saga_id, cmd.payload["book_id"]))
    return None


LEND_BOOK = SagaDefinition(name="lend-book", steps=(
    Step(name="request_loan", participant="toybooks", command=None, compensation="CancelLoan", carries=("loan_id",)),
    Step(name="take_copy", participant="toyshelf", command="TakeCopy", pivot=True, carries=("book_id",)),
))

DOMAIN = Domain(
    name="toy",
    description="books replicated to a shelf; a two-step lend-book saga",
    services=(
        ServiceSpec("toybooks", captured_tables=("books", "loans"), migrations=HERE / "books_migrations",
                    aggregates=("loan",), private_columns={"books": ("purchase_price",)}),
        ServiceSpec("toyshelf", captured_tables=("copies",), migrations=HERE / "shelf_migrations"),
    ),
    replication=HERE / "replication.json",
    sagas=(SagaPlugin(definition=LEND_BOOK,
                      start=SagaStart(aggregate="loan", event_type="LoanRequested", model=LoanRequested, key="loan_id"),
                      handlers={"toybooks": {"CancelLoan": cancel_loan}, "toyshelf": {"TakeCopy": take_copy}}),),
)
