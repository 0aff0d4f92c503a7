"""Telling Connect's 'come back after the rebalance' answers from real errors, on responses as
the transport sees them: streams not read yet."""
from __future__ import annotations

import httpx

from connectors.connect_api import _rebalancing


def _streamed(status: int, body: bytes) -> httpx.Response:
    return httpx.Response(status, stream=httpx.ByteStream(body))


def test_a_500_saying_rebalance_is_retried_and_its_body_stays_readable():
    resp = _streamed(500, b'{"error_code":500,"message":"Request cannot be completed because a rebalance is expected"}')
    assert _rebalancing(resp)
    assert b"rebalance" in resp.content


def test_other_errors_are_returned_with_their_body():
    resp = _streamed(500, b'{"message":"Connector configuration is invalid"}')
    assert not _rebalancing(resp)
    assert resp.json()["message"] == "Connector configuration is invalid"
    assert _rebalancing(_streamed(409, b"")) and not _rebalancing(_streamed(404, b"{}"))
