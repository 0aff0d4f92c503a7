"""The accounts handlers' decisions, with the provider faked: a refused step leaves nothing at
the provider; the compensation deletes by the sign-up's id."""
from __future__ import annotations

import asyncio
import time

import pytest

from schemas.saga import SagaCommand
from services.signup.accounts import handlers, idp_client

pytestmark = pytest.mark.unit
PAYLOAD = {"signup_id": "s-1", "email": "ada@example.org", "name": "Ada"}


class _Conn:
    def __init__(self) -> None:
        self.sql: list[tuple] = []

    async def execute(self, sql, params=()):
        self.sql.append((sql.split()[0], params))


def _cmd(name: str, action: str = "action") -> SagaCommand:
    return SagaCommand(saga_id="saga-1", saga="sign-up", step=1, step_name="create_account", action=action,  # type: ignore[arg-type]
                       participant="accounts", name=name, deadline=time.time() + 60, payload=PAYLOAD)


@pytest.fixture
def provider(monkeypatch):
    calls: list[tuple] = []
    answer: dict = {}

    async def create_user(**kw):
        calls.append(("create", kw["external_id"]))
        if isinstance(answer.get("create"), Exception):
            raise answer["create"]
        return answer.get("create", idp_client.CreateResult("u-1"))

    async def delete_by_external_id(external_id):
        calls.append(("delete", external_id))

    monkeypatch.setattr(idp_client, "create_user", create_user)
    monkeypatch.setattr(idp_client, "delete_by_external_id", delete_by_external_id)
    return calls, answer


def test_created_keeps_only_the_provider_id(provider):
    conn = _Conn()
    assert asyncio.run(handlers.create_account(conn, _cmd("CreateAccount"))) is None  # type: ignore[arg-type]
    assert conn.sql == [("INSERT", ("s-1", "u-1"))]


def test_a_taken_email_refuses_and_writes_nothing(provider):
    calls, answer = provider
    answer["create"] = idp_client.CreateResult(None, "e-mail already registered")
    conn = _Conn()
    assert asyncio.run(handlers.create_account(conn, _cmd("CreateAccount"))) == "e-mail already registered"  # type: ignore[arg-type]
    assert conn.sql == [] and calls == [("create", "s-1")]


def test_a_provider_that_does_not_answer_is_withdrawn_before_the_step_refuses(provider):
    calls, answer = provider
    answer["create"] = idp_client.ProviderTimeout("ReadTimeout")
    conn = _Conn()
    reason = asyncio.run(handlers.create_account(conn, _cmd("CreateAccount")))  # type: ignore[arg-type]
    assert reason is not None and "withdrawn" in reason
    assert calls == [("create", "s-1"), ("delete", "s-1")] and conn.sql == []


def test_the_compensation_deletes_by_the_sign_up_id(provider):
    calls, _ = provider
    conn = _Conn()
    assert asyncio.run(handlers.delete_account(conn, _cmd("DeleteAccount", "compensation"))) is None  # type: ignore[arg-type]
    assert calls == [("delete", "s-1")] and conn.sql == [("DELETE", ("s-1",))]
