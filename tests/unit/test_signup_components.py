"""The sign-up domain's stand-ins for the outside world, in process: the identity provider's
store and HTTP API, and the SMTP sink with the mailer's send (on a free loopback port)."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest

from services.signup.idp.server import fault_of, make_app
from services.signup.idp.store import Store
from services.signup.mailer import welcome
from services.signup.smtp import mailbox

pytestmark = pytest.mark.unit


def test_store_creates_idempotently_by_external_id_and_refuses_a_taken_email(tmp_path: Path):
    store = Store(tmp_path / "idp.sqlite3")
    first = store.create("s-1", "Ada@Example.org", "Ada")
    assert first.status == 201 and first.user_id
    assert store.create("s-1", "ada@example.org", "Ada") == type(first)(200, first.user_id), "a retry gets the same user"
    assert store.create("s-2", "ada@example.org", "Other").status == 409
    assert store.find(email="ADA@example.org") == store.get(first.user_id)


def test_a_withdrawn_external_id_is_deleted_and_never_created_later(tmp_path: Path):
    store = Store(tmp_path / "idp.sqlite3")
    store.create("s-1", "ada@example.org", "Ada")
    assert store.withdraw("s-1") and store.find(external_id="s-1") is None
    assert not store.withdraw("s-2"), "withdrawing before the create is allowed ..."
    assert store.create("s-2", "bob@example.org", "Bob").status == 410, "... and the late create is refused"
    assert store.count() == 0


def test_data_driven_faults():
    assert fault_of("slow+ada@example.org") == "slow" and fault_of("FAIL+x@example.org") == "fail"
    assert fault_of("ada+slow@example.org") is None


def test_http_api(tmp_path: Path):
    from aiohttp.test_utils import TestClient, TestServer

    async def scenario() -> None:
        async with TestClient(TestServer(make_app(tmp_path, slow_s=0.2))) as client:
            assert (await client.get("/healthz")).status == 200
            created = await client.post("/users", json={"external_id": "s-1", "email": "ada@example.org", "name": "A"})
            assert created.status == 201
            uid = (await created.json())["id"]
            assert (await client.get(f"/users/{uid}")).status == 200
            dup = await client.post("/users", json={"external_id": "s-2", "email": "ada@example.org", "name": "A"})
            assert dup.status == 409
            assert (await client.post("/users", json={"email": "x"})).status == 400
            assert (await client.post("/users", json={"external_id": "s-3", "email": "fail+a@example.org",
                                                      "name": "A"})).status == 500
            slow = await client.post("/users", json={"external_id": "s-4", "email": "slow+a@example.org", "name": "A"})
            assert slow.status == 201
            assert (await client.delete("/users", params={"external_id": "s-4"})).status == 204
            assert (await client.get("/users", params={"external_id": "s-4"})).status == 404
            assert (await client.delete(f"/users/{uid}")).status == 204
            assert (await client.get(f"/users/{uid}")).status == 404
            assert (await (await client.post("/faults", json={"fail": True})).json())["fail"] is True
            assert (await client.post("/users", json={"external_id": "s-5", "email": "b@example.org",
                                                      "name": "B"})).status == 500

    asyncio.run(scenario())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_sink(tmp_path: Path):
    from services.signup.smtp.server import serve

    port = _free_port()
    loop = asyncio.new_event_loop()
    task = loop.create_task(serve(port, tmp_path))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert time.monotonic() < deadline, "the SMTP sink did not listen within 10s"
    yield f"smtp://127.0.0.1:{port}", tmp_path / mailbox.MAILBOX

    def stop() -> None:
        task.cancel()
        task.add_done_callback(lambda _: loop.stop())

    loop.call_soon_threadsafe(stop)
    thread.join(5)
    loop.close()


def test_the_sink_keeps_each_message_and_the_send_refuses_a_refused_domain(smtp_sink):
    url, box = smtp_sink
    mail = welcome.compose("saga-1", "ada@example.org", "Ada", "es")
    welcome.send(url, mail)
    got = mailbox.read(box)
    assert len(got) == 1 and got[0]["message_id"] == welcome.message_id("saga-1") == mail.message_id
    assert got[0]["to"] == ["ada@example.org"] and got[0]["template"] == "welcome-es-v1" and "Ada" in got[0]["body"]
    with pytest.raises(welcome.MailRefused, match="550"):
        welcome.send(url, welcome.compose("saga-2", "grace@refused.example", "Grace"))
    assert len(mailbox.read(box)) == 1


def test_an_smtp_server_that_is_away_is_transient():
    with pytest.raises(ConnectionError):
        welcome.send(f"smtp://127.0.0.1:{_free_port()}", welcome.compose("saga-1", "a@example.org", "A"), timeout=2)


def test_sink_faults_by_address():
    assert mailbox.refuses("grace@Refused.Example") and not mailbox.refuses("grace@example.org")
    assert mailbox.slow("slowmail+1.x@example.org") and not mailbox.slow("slow+1@example.org")
