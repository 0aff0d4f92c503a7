"""Messages as the topics carry them, built from the captured Debezium samples (tests/unit/samples)
and from the outbox's envelope, so the db tier parses what the workers parse."""
from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from schemas.saga import SagaCommand
from streams.deadletter import RawMessage
from streams.sagas.topics import commands_topic
from streams.spec import ReplicationPair

SAMPLES = Path(__file__).resolve().parents[1] / "unit" / "samples"
_INSERT = json.loads((SAMPLES / "customer_insert.json").read_text())
_DELETE = json.loads((SAMPLES / "customer_delete.json").read_text())


def change(pair: ReplicationPair, customer_id: int, lsn: int, op: str = "c", offset: int = 0,
           **after: Any) -> RawMessage:
    """A change of orders.customers at source LSN `lsn` (its transaction committed right before):
    op c/u with the sample's row updated by `after`, d (a delete), or r (a snapshot read)."""
    doc = copy.deepcopy(_DELETE if op == "d" else _INSERT)
    value = doc["value"]
    value["op"] = op
    image = value["before"] if op == "d" else value["after"]
    image.update({"id": customer_id, **after})
    value["source"]["lsn"] = lsn
    value["source"]["sequence"] = json.dumps([str(lsn - 1), str(lsn)])
    value["source"]["snapshot"] = "true" if op == "r" else "false"
    key = orjson.dumps({"id": customer_id})
    return RawMessage(pair.source_topic, 0, offset, key, orjson.dumps(value))


def command(saga_id: str, participant: str, name: str, payload: dict[str, Any], step: int = 1,
            action: str = "action", deadline: float | None = None, attempt: int = 1) -> SagaCommand:
    return SagaCommand(saga_id=saga_id, saga="place-order", step=step, step_name=f"step{step}",
                       action=action,  # type: ignore[arg-type]
                       participant=participant, name=name, attempt=attempt, payload=payload,
                       deadline=time.time() + 60 if deadline is None else deadline)


def outbox_message(cmd: SagaCommand, offset: int = 0) -> RawMessage:
    """The command as the EventRouter publishes it: key the aggregate id, headers id and eventType."""
    headers = (("id", str(uuid.uuid4()).encode()), ("eventType", cmd.name.encode()))
    return RawMessage(commands_topic(cmd.participant), 0, offset, orjson.dumps(cmd.saga_id),
                      orjson.dumps(cmd.model_dump()), headers)
