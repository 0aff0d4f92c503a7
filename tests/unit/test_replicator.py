"""The batch loop body with fake sinks: it returns only when everything is applied or
dead-lettered, retries while the target is down, isolates bad rows, and stops on a wrong deployment."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import orjson
import psycopg
import pytest

from streams import spec as spec_mod
from streams.deadletter import DeadLetter, RawMessage, dlq_headers
from streams.errors import ErrorKind, classify
from streams.replicator import Backoff, FatalApplyError, PairReplicator
from streams.sink import SinkSchemaError

SAMPLES = Path(__file__).parent / "samples"
PAIR = spec_mod.load().pair("customers-to-inventory")


def _msg(sample: str, offset: int, **after) -> RawMessage:
    doc = json.loads((SAMPLES / sample).read_text())
    if after and doc["value"].get("after"):
        doc["value"]["after"].update(after)
    value = None if doc["value"] is None else orjson.dumps(doc["value"])
    return RawMessage(PAIR.source_topic, 0, offset, doc["key"].encode(), value)


class FakeSink:
    def __init__(self, failures: list[BaseException] | None = None, bad_names: set[str] = frozenset()) -> None:
        self.failures = list(failures or [])
        self.bad_names = bad_names
        self.applied: list = []

    async def apply(self, rows):
        if self.failures:
            raise self.failures.pop(0)
        if any(r.values[0] in self.bad_names for r in rows):
            raise psycopg.errors.StringDataRightTruncation("value too long")
        self.applied.extend(rows)
        return len(rows)

    async def apply_each(self, rows):
        good = [r for r in rows if r.values[0] not in self.bad_names]
        self.applied.extend(good)
        return len(good), [(r, "DataError: value too long") for r in rows if r.values[0] in self.bad_names]


class FakeDLQ:
    def __init__(self, failures: list[BaseException] | None = None) -> None:
        self.letters: list[DeadLetter] = []
        self.failures = list(failures or [])

    async def publish(self, letters):
        if self.failures:
            raise self.failures.pop(0)
        self.letters.extend(letters)


def _run(sink, msgs, dlq=None):
    dlq = dlq or FakeDLQ()
    replicator = PairReplicator(PAIR, sink, dlq, Backoff(first=0.001, maximum=0.002))
    return asyncio.run(replicator.process(msgs)), dlq


def test_batch_keeps_newest_per_key_and_skips_tombstones():
    sink = FakeSink()
    outcome, dlq = _run(sink, [_msg("customer_insert.json", 0), _msg("customer_update.json", 1),
                               _msg("customer_delete.json", 2), _msg("customer_tombstone.json", 3)])
    assert outcome.received == 4 and outcome.skipped_tombstones == 1 and not dlq.letters
    assert len(sink.applied) == 1 and sink.applied[0].deleted


def test_a_column_dropped_at_the_source_stops_the_batch_unapplied_and_nothing_dead_lettered():
    doc = json.loads((SAMPLES / "customer_update.json").read_text())
    del doc["value"]["after"]["country"]  # a replicated column, dropped at the source
    dropped = RawMessage(PAIR.source_topic, 0, 9, doc["key"].encode(), orjson.dumps(doc["value"]))
    sink, dlq = FakeSink(), FakeDLQ()
    with pytest.raises(FatalApplyError, match=r"customers-to-inventory.*country.*\[0\]@9"):
        _run(sink, [_msg("customer_insert.json", 8), dropped], dlq)
    assert not sink.applied and not dlq.letters, "a stopped batch applies nothing and skips nothing"


def test_malformed_message_is_dead_lettered_with_reason_and_the_rest_applies():
    sink = FakeSink()
    poison = RawMessage(PAIR.source_topic, 1, 7, b'{"id": 9}', b"garbage")
    outcome, dlq = _run(sink, [poison, _msg("customer_insert.json", 8)])
    assert [letter.message for letter in dlq.letters] == [poison] and "not JSON" in dlq.letters[0].reason
    assert len(sink.applied) == 1


def test_a_dead_letter_publish_that_fails_is_retried_before_the_batch_returns():
    # the batch is acknowledged once process() returns: a poison message whose dead letter was
    # never published would be lost without a trace
    dlq = FakeDLQ(failures=[ConnectionError("broker away"), RuntimeError("delivery timed out")])
    poison = RawMessage(PAIR.source_topic, 1, 7, b'{"id": 9}', b"garbage")
    outcome, _ = _run(FakeSink(), [poison], dlq)
    assert [letter.message for letter in dlq.letters] == [poison] and outcome.retries == 2


def test_target_down_is_retried_until_it_is_back():
    down = psycopg.OperationalError("connection refused")
    sink = FakeSink(failures=[down, down, down])
    outcome, _ = _run(sink, [_msg("customer_insert.json", 0)])
    assert outcome.retries == 3 and len(sink.applied) == 1


def test_bad_rows_are_isolated_and_dead_lettered():
    sink = FakeSink(bad_names={"Ada"})
    msgs = [_msg("customer_insert.json", 0), _msg("customer_insert.json", 1, id=2, name="Bob")]
    msgs[1] = RawMessage(msgs[1].topic, 0, 1, b'{"id":2}', msgs[1].value)
    outcome, dlq = _run(sink, msgs)
    assert [r.key for r in sink.applied] == [(2,)]
    assert len(dlq.letters) == 1 and dlq.letters[0].message.offset == 0
    assert "rejected by inventory" in dlq.letters[0].reason


def test_wrong_deployment_stops_instead_of_acknowledging():
    sink = FakeSink(failures=[SinkSchemaError("customers_replica lacks columns")])
    with pytest.raises(FatalApplyError, match="lacks columns"):
        _run(sink, [_msg("customer_insert.json", 0)])


@pytest.mark.parametrize("exc, kind", [
    (psycopg.OperationalError("server closed the connection"), ErrorKind.TRANSIENT),
    (psycopg.errors.AdminShutdown("terminating"), ErrorKind.TRANSIENT),
    (psycopg.errors.DeadlockDetected("deadlock"), ErrorKind.TRANSIENT),
    (psycopg.errors.StringDataRightTruncation("too long"), ErrorKind.BAD_ROWS),
    (psycopg.errors.NotNullViolation("null"), ErrorKind.BAD_ROWS),
    (psycopg.errors.UndefinedTable("no table"), ErrorKind.FATAL),
    (psycopg.errors.InsufficientPrivilege("denied"), ErrorKind.FATAL),
    (ConnectionResetError(), ErrorKind.TRANSIENT),
    (psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), ErrorKind.BAD_ROWS),
    (psycopg.InterfaceError("the connection is closed"), ErrorKind.TRANSIENT),
])
def test_error_classification(exc, kind):
    assert classify(exc) is kind


def test_dead_letter_headers_say_where_from_and_why():
    letter = DeadLetter(RawMessage("t", 2, 41, b"k", b"v", (("x", b"1"),)), "malformed: boom")
    headers = dict(dlq_headers(letter, "p"))
    assert headers == {"dlq.reason": b"malformed: boom", "dlq.topic": b"t", "dlq.partition": b"2",
                       "dlq.offset": b"41", "dlq.pair": b"p", "x": b"1"}
