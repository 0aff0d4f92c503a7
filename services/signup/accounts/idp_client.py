"""The accounts service's client of the identity provider (IDP_URL). Answers the saga cares
about become values; a provider that is unreachable or failing (5xx) raises ConnectionError,
which the saga runtime retries in place with back-off (an OSError is transient to it)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from services.signup import config

# Longer than the provider's slowest create (30 s, `slow+`): the handler waits for the answer
# rather than giving up on an account the provider may still create.
TIMEOUT_S = 60.0


class ProviderTimeout(Exception):
    """The provider did not answer a create in time: it may still create the user."""


@dataclass(frozen=True)
class CreateResult:
    user_id: str | None
    refused: str | None = None


async def create_user(external_id: str, email: str, name: str) -> CreateResult:
    try:
        resp = await _call("POST", "/users", json={"external_id": external_id, "email": email, "name": name})
    except ConnectionError as exc:
        if isinstance(exc.__cause__, httpx.TimeoutException) and not isinstance(exc.__cause__, httpx.ConnectTimeout):
            raise ProviderTimeout(str(exc)) from exc
        raise
    if resp.status_code in (200, 201):
        return CreateResult(str(resp.json()["id"]))
    if resp.status_code == 409:
        return CreateResult(None, "e-mail already registered")
    if resp.status_code == 410:
        return CreateResult(None, "the sign-up was withdrawn before the provider created the account")
    raise ValueError(f"identity provider refused the request: {resp.status_code} {resp.text[:200]}")


async def delete_by_external_id(external_id: str) -> None:
    """Deletes the user of this sign-up, also one created late; idempotent."""
    resp = await _call("DELETE", "/users", params={"external_id": external_id})
    if resp.status_code not in (204, 404):
        raise ConnectionError(f"identity provider answered {resp.status_code} to a delete")


_clients: dict[int, httpx.AsyncClient] = {}   # per event loop: a pooled client, kept-alive connections


def _client() -> httpx.AsyncClient:
    loop = id(asyncio.get_running_loop())
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = _clients[loop] = httpx.AsyncClient(base_url=config.value("IDP_URL"), timeout=TIMEOUT_S)
    return client


async def _call(method: str, path: str, **kw) -> httpx.Response:
    try:
        resp = await _client().request(method, path, **kw)
    except httpx.HTTPError as exc:
        raise ConnectionError(f"identity provider unreachable: {type(exc).__name__}: {exc}") from exc
    if resp.status_code >= 500:
        raise ConnectionError(f"identity provider failed: {resp.status_code} {resp.text[:200]}")
    return resp
