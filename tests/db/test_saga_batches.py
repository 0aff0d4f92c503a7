"""A participant worker's batches (streams/sagas/apps.py) against real service databases: one
transaction per batch with a savepoint per message, a poison message dead-lettered alone, and a
deadlock between two concurrent batches redone a message at a time."""
from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from services.ecommerce.inventory.handlers import HANDLERS as INVENTORY
from services.ecommerce.payments.handlers import HANDLERS as PAYMENTS
from streams.deadletter import RawMessage
from streams.sagas.apps import apply_messages, command_handler
from tests.db.changes import command, outbox_message

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]


def charge(saga_id: str, offset: int, order_id: int | None = 1) -> RawMessage:
    payload = {"order_id": order_id, "customer_id": 2, "total": "5.00", "credit_limit": "10.00"}
    return outbox_message(command(saga_id, "payments", "ChargePayment", payload), offset)


def reserve(saga_id: str, sku: str, offset: int) -> RawMessage:
    return outbox_message(command(saga_id, "inventory", "ReserveStock", {"items": [{"sku": sku, "quantity": 1}]},
                                  step=2), offset)


def test_a_poison_message_is_dead_lettered_alone_and_the_rest_of_the_batch_commits(fresh_db):
    # rule: each message's SQL runs in its own savepoint of the batch's transaction, so a message
    # that cannot be handled (not JSON; or refused by the database: a NULL order id) is
    # dead-lettered and the others commit
    dsn = fresh_db("payments")
    good = [str(uuid.uuid4()) for _ in range(3)]
    not_json = RawMessage("saga.commands.payments", 0, 1, b'"x"', b"{not json", (("id", b"1"), ("eventType", b"X")))
    batch = [charge(good[0], 0), not_json, charge(good[1], 2), charge(str(uuid.uuid4()), 3, order_id=None),
             charge(good[2], 4)]

    async def run() -> list:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            return await apply_messages(conn, batch, command_handler(PAYMENTS))

    dead = asyncio.run(run())
    assert [d.message.offset for d in dead] == [1, 3]
    assert "NotNullViolation" in dead[1].reason
    with psycopg.connect(dsn) as conn:
        charged = conn.execute("SELECT saga_id FROM payments ORDER BY saga_id").fetchall()
        inbox = conn.execute("SELECT count(*) FROM saga_inbox").fetchone()
        replies = conn.execute("SELECT count(*) FROM outbox").fetchone()
    assert charged == [(s,) for s in sorted(good)] and inbox == (3,) and replies == (3,), \
        "the good messages commit with their inbox rows and replies; the poison leaves nothing"


def test_a_bad_message_that_breaks_the_batch_transaction_is_isolated_by_a_redo(fresh_db):
    # rule: a handler error outside its own savepoint leaves the transaction unusable: the batch is
    # redone a message at a time and only that message is dead-lettered
    dsn = fresh_db("payments")
    sagas = [str(uuid.uuid4()) for _ in range(3)]
    batch = [charge(s, i) for i, s in enumerate(sagas)]
    handle = command_handler(PAYMENTS)

    async def careless(conn: psycopg.AsyncConnection, msg: RawMessage) -> None:
        if msg.offset == 1:
            await conn.execute("SELECT 1 / 0")  # no savepoint of its own
        await handle(conn, msg)

    async def run() -> list:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            return await apply_messages(conn, batch, careless)

    dead = asyncio.run(run())
    assert [d.message.offset for d in dead] == [1]
    with psycopg.connect(dsn) as conn:
        charged = conn.execute("SELECT saga_id FROM payments ORDER BY saga_id").fetchall()
    assert charged == sorted([(sagas[0],), (sagas[2],)])


def test_two_batches_that_deadlock_are_redone_a_message_at_a_time_and_both_complete(fresh_db):
    # rule: a deadlock between two actors' batches (same rows, opposite order) rolls the loser's
    # batch back and redoes it a message at a time; nothing is dead-lettered, every message acts once
    dsn = fresh_db("inventory")
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO stock_items (sku, on_hand) VALUES ('A', 10), ('B', 10)")
    first = [reserve(str(uuid.uuid4()), "A", 0), reserve(str(uuid.uuid4()), "B", 1)]
    second = [reserve(str(uuid.uuid4()), "B", 0), reserve(str(uuid.uuid4()), "A", 1)]
    handle = command_handler(INVENTORY)

    async def run() -> tuple[list, list, list[int], list[int]]:
        both_hold_a_row = asyncio.Barrier(2)

        def paused_after_first(calls: list[int]):
            async def h(conn: psycopg.AsyncConnection, msg: RawMessage) -> None:
                await handle(conn, msg)
                calls.append(msg.offset)
                if len(calls) == 1:  # each batch holds its first row's lock until the other does too
                    await both_hold_a_row.wait()
            return h

        calls_1: list[int] = []
        calls_2: list[int] = []
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as c1, \
                await psycopg.AsyncConnection.connect(dsn, autocommit=True) as c2:
            dead_1, dead_2 = await asyncio.gather(apply_messages(c1, first, paused_after_first(calls_1)),
                                                  apply_messages(c2, second, paused_after_first(calls_2)))
        return dead_1, dead_2, calls_1, calls_2

    dead_1, dead_2, calls_1, calls_2 = asyncio.run(run())
    assert dead_1 == dead_2 == []
    assert sorted([len(calls_1), len(calls_2)]) == [2, 3], \
        f"one batch deadlocked after its first message and redid it: calls {calls_1}, {calls_2}"
    with psycopg.connect(dsn) as conn:
        stock = conn.execute("SELECT sku, on_hand, reserved FROM stock_items ORDER BY sku").fetchall()
        reservations = conn.execute("SELECT count(*) FROM stock_reservations").fetchone()
        inbox = conn.execute("SELECT count(*) FROM saga_inbox").fetchone()
    assert stock == [("A", 8, 2), ("B", 8, 2)] and reservations == (4,) and inbox == (4,)
