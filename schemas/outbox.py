"""A business event as the outbox EventRouter publishes it: key = aggregate id, value = the
expanded JSON payload, headers `id` (event id) and `eventType`."""
from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

from schemas.envelope import MalformedEvent


class OutboxMessage(BaseModel):
    event_id: str
    event_type: str
    aggregate_id: str
    payload: dict[str, Any]


def _header(headers: Any, name: str) -> str:
    for key, value in headers or []:
        if key == name and value is not None:
            return value.decode()
    raise MalformedEvent(f"outbox message without the {name!r} header")


def parse_outbox(key: bytes | None, value: bytes | None, headers: Any) -> OutboxMessage:
    """`headers`: a Kafka client's header list of (name, bytes) pairs."""
    if key is None or value is None:
        raise MalformedEvent("outbox message without key or value")
    try:
        aggregate_id = orjson.loads(key)
        payload = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise MalformedEvent(f"outbox message is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise MalformedEvent("outbox payload is not a JSON object")
    return OutboxMessage(event_id=_header(headers, "id"), event_type=_header(headers, "eventType"),
                         aggregate_id=str(aggregate_id), payload=payload)
