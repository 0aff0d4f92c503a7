"""The sign-up saga on the real stack, orchestrated and choreographed: the registration
service's outbox starts it, Debezium carries every message, real Faust workers call a real
HTTP identity provider and a real SMTP sink (the `idp` and `smtp` components of `make up`).
Failures come from data: an e-mail that is invalid, already registered, slow at the provider
(`slow+`), or of a domain the mail server refuses (`refused.example`)."""
from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

import httpx
import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from cdc_testing.events import TopicReader, committed_offset
from cdc_testing.polling import poll
from cdc_testing.workers import WorkerProcess, diagnose
from services.signup.mailer.welcome import message_id
from services.signup.registration.commands import InvalidSignUp, sign_up
from services.signup.sign_up import SIGN_UP
from services.signup.smtp import mailbox
from stack.kafka_client import ADMIN, KafkaAccess, access
from streams.sagas.orchestrator import saga_id_for
from streams.sagas.topics import commands_topic, events_topic
from streams.sagas.worker import MODES
from tests.integration import saga_helpers
from tests.integration.saga_helpers import coordinator, one, rows

pytestmark = pytest.mark.integration
TERMINAL = ("COMPLETED", "COMPENSATED", "FAILED")
# The slow provider holds a worker ~30 s (past the step's retries): not a stall.
WORKER_ENV = {"CDC_WORKER_STALL_RESTART": "60"}


def saga_worker(name: str, mode: str, env: dict[str, str], log_dir) -> WorkerProcess:
    return saga_helpers.saga_worker(name, mode, env, log_dir, extra_env=WORKER_ENV)


@pytest.fixture(scope="module", params=MODES)
def signup_mode(request, stack_env, tmp_path_factory, monkeypatch_module):
    """Every worker of the mode, for the module's tests; yields (mode, workers by name)."""
    from streams.sagas.worker import names

    for key in ("IDP_URL", "SMTP_URL", "MAILER_DATABASE_URL"):
        assert key in stack_env, f"`make env` has no {key}: is the signup domain enabled and `make up` run?"
        monkeypatch_module.setenv(key, stack_env[key])   # the in-process handler tests read them
    log_dir = tmp_path_factory.mktemp(f"signup-workers-{request.param}")
    workers = {n: saga_worker(n, request.param, stack_env, log_dir) for n in names(request.param)}
    try:
        for w in workers.values():
            w.wait_healthy()
        yield request.param, workers
    finally:
        for w in workers.values():
            w.stop()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def start(env, email: str, name: str = "Ada Lovelace", locale: str = "en") -> str:
    with psycopg.connect(env["REGISTRATION_DATABASE_URL"]) as conn:
        return sign_up(conn, {"email": email, "name": name, "locale": locale})


def finish(env, signup_id: str, timeout: float = 90) -> tuple[str, str | None]:
    """Wait until the sign-up's saga ended; (state, reason)."""
    try:
        row = poll(lambda: one(env["ORCHESTRATOR_OBSERVER_URL"], "SELECT state, reason FROM saga_instances "
                               "WHERE business_key = %s", (signup_id,)),
                   lambda r: r is not None and r[0] in TERMINAL, timeout, f"the sign-up saga of {signup_id} to end")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnose()}") from None
    return row[0], row[1]


def provider_user(env, **query: str) -> dict | None:
    resp = httpx.get(f"{env['IDP_URL']}/users", params=query, timeout=10)
    assert resp.status_code in (200, 404), resp.text
    return resp.json() if resp.status_code == 200 else None


def mail_counts(signup_ids: list[str]) -> dict[str, int]:
    """Welcome e-mails in the sink's mailbox per sign-up (one read of the mailbox)."""
    counts = mailbox.by_message_id(mailbox.read(mailbox.stack_mailbox()))
    return {s: counts[message_id(saga_id_for(SIGN_UP.name, s))] for s in signup_ids}


def mails(signup_id: str) -> int:
    return mail_counts([signup_id])[signup_id]


def records(env, signup_id: str) -> dict:
    return {
        "provider": provider_user(env, external_id=signup_id),
        "accounts": rows(env["ACCOUNTS_OBSERVER_URL"], "SELECT registration_signup_id, provider_user_id FROM accounts "
                         "WHERE registration_signup_id = %s", (signup_id,)),
        "welcome": rows(env["MAILER_OBSERVER_URL"], "SELECT email, name, template_id FROM welcome_emails "
                        "WHERE registration_signup_id = %s", (signup_id,)),
        "mails": mails(signup_id),
    }


def assert_nothing_left(env, signup_id: str) -> None:
    r = records(env, signup_id)
    assert r == {"provider": None, "accounts": [], "welcome": [], "mails": 0}, r


def test_success_creates_the_account_keeps_only_its_id_and_sends_one_welcome(stack_env, signup_mode, unique):
    signup_id = start(stack_env, f"  Ada.{unique}@Example.ORG ", " Ada   Lovelace ", "es")
    assert finish(stack_env, signup_id) == ("COMPLETED", None)
    r = records(stack_env, signup_id)
    assert r["provider"] is not None and r["provider"]["email"] == f"ada.{unique}@example.org"
    assert r["provider"]["name"] == "Ada Lovelace"
    assert r["accounts"] == [(signup_id, r["provider"]["id"])]
    assert r["welcome"] == [(f"ada.{unique}@example.org", "Ada Lovelace", "welcome-es-v1")]
    assert r["mails"] == 1, "exactly one welcome e-mail"
    columns = rows(stack_env["ACCOUNTS_OBSERVER_URL"], "SELECT column_name FROM information_schema.columns "
                   "WHERE table_schema = 'public' AND table_name = 'accounts' ORDER BY ordinal_position")
    assert [c for (c,) in columns] == ["registration_signup_id", "provider_user_id", "created_at"], \
        "the accounts service keeps the provider's id and nothing personal"


def test_an_invalid_email_is_refused_at_validation_and_nothing_is_created(stack_env, signup_mode, unique):
    email = f"ada.{unique}-at-example.org"
    with pytest.raises(InvalidSignUp, match="email: .*not an e-mail address"):
        start(stack_env, email)
    assert one(stack_env["REGISTRATION_OBSERVER_URL"], "SELECT count(*) FROM outbox WHERE payload::text LIKE %s",
               (f"%{unique}%",)) == (0,), "no event: no saga"
    assert provider_user(stack_env, email=email) is None


def test_an_already_registered_email_is_refused_by_the_provider_and_leaves_nothing(stack_env, signup_mode, unique):
    first = start(stack_env, f"grace.{unique}@example.org", "Grace Hopper")
    assert finish(stack_env, first)[0] == "COMPLETED"
    again = start(stack_env, f" GRACE.{unique}@example.org", "Someone Else")
    state, reason = finish(stack_env, again)
    assert (state, reason) == ("COMPENSATED", "create_account: e-mail already registered")
    assert_nothing_left(stack_env, again)
    owner = provider_user(stack_env, email=f"grace.{unique}@example.org")
    assert owner is not None and owner["external_id"] == first and owner["name"] == "Grace Hopper"
    assert mails(first) == 1


def test_a_refused_mail_domain_deletes_the_account_and_rejects_the_sign_up(stack_env, signup_mode, unique):
    signup_id = start(stack_env, f"ada.{unique}@refused.example")
    state, reason = finish(stack_env, signup_id)
    assert state == "COMPENSATED" and reason is not None and "welcome e-mail refused" in reason and "550" in reason
    assert_nothing_left(stack_env, signup_id)
    if signup_mode[0] == "orchestration":
        timeline = rows(stack_env["ORCHESTRATOR_OBSERVER_URL"],
                        "SELECT e.kind, e.step_name, e.action FROM saga_events e JOIN saga_instances s "
                        "ON s.id = e.saga_id WHERE s.business_key = %s AND e.kind IN ('sent', 'replied') "
                        "ORDER BY e.at, e.id", (signup_id,))
        assert timeline == [("sent", "create_account", "action"), ("replied", "create_account", "action"),
                            ("sent", "send_welcome", "action"), ("replied", "send_welcome", "action"),
                            ("sent", "create_account", "compensation"), ("replied", "create_account", "compensation")]


def test_a_provider_slower_than_the_step_timeout_ends_the_sign_up_and_its_late_account_does_not_outlive_it(
        stack_env, signup_mode, unique):
    """The provider answers after the step's timeout. The accounts participant is alive and the
    command is not acknowledged while its handler waits, which the step's deadline takes for the
    pipeline's delay (docs/outages.md, limits): the sign-up may then complete. If the step gives
    up instead, the orchestrator compensates it (DeleteAccount deletes by the sign-up's id, so a
    late account is deleted) and the choreography's give-up lets a step that did act stand.
    Whichever way it ends, the records agree with the outcome."""
    signup_id = start(stack_env, f"slow+{unique}@example.org")
    state, reason = finish(stack_env, signup_id, timeout=150)
    if state == "COMPENSATED":
        assert reason == "create_account timed out", reason
        assert_nothing_left(stack_env, signup_id)
    else:
        assert state == "COMPLETED", reason
        r = records(stack_env, signup_id)
        assert r["provider"] is not None and r["accounts"] == [(signup_id, r["provider"]["id"])] and r["mails"] == 1


def test_a_malformed_message_is_dead_lettered_and_the_next_sign_up_completes(stack_env, signup_mode, unique):
    kafka = access(stack_env, ADMIN)
    orchestrated = signup_mode[0] == "orchestration"
    topic = commands_topic("accounts") if orchestrated else events_topic("registration")
    group = "cdc-saga-accounts" if orchestrated else "cdc-choreography-accounts"
    dlq = TopicReader(kafka, ["dlq.saga.accounts"])
    try:
        key = f'"poison-{unique}"'.encode()
        value = b'{"saga_id": "poison", "step": "one"}'
        delivered: list = []
        producer = Producer(kafka.config(**{"partitioner": "murmur2_random"}))
        producer.produce(topic, key=key, value=value,
                         headers=[("id", unique.encode()),
                                  ("eventType", b"CreateAccount" if orchestrated else b"SagaOutcome")],
                         on_delivery=lambda err, msg: delivered.append(msg))
        assert producer.flush(10) == 0 and delivered
        letters = dlq.wait_for(lambda m: m.key() == key, 1, 60, "the malformed message on dlq.saga.accounts")
        headers = dict(letters[0].headers())
        assert b"malformed" in headers["dlq.reason"] and headers["dlq.topic"] == topic.encode(), headers
        poison = TopicPartition(topic, delivered[0].partition())
        poll(lambda: committed_offset(kafka, group, poison), lambda off: off > delivered[0].offset(), 30,
             f"{group} committed past the malformed message")
    finally:
        dlq.close()
    signup_id = start(stack_env, f"next.{unique}@example.org")
    assert finish(stack_env, signup_id) == ("COMPLETED", None)


def test_a_crash_between_the_smtp_send_and_its_record_sends_at_most_once_more(stack_env, signup_mode, unique):
    """The mailer's handler, in process against the real mailer database and SMTP sink: a crash
    after the server accepted the message but before the send ledger committed redelivers the
    command and mails once more (the bound: 2); a crash after the ledger's commit (the command's
    own transaction lost) mails no more."""
    if signup_mode[0] != "orchestration":
        pytest.skip("mode-independent: the handler is the same in both modes")
    from schemas.saga import SagaCommand
    from services.signup.mailer import handlers
    from streams.sagas.participant import handle

    url = stack_env["MAILER_DATABASE_URL"]

    def command(signup_id: str) -> SagaCommand:
        return SagaCommand(saga_id=saga_id_for(SIGN_UP.name, signup_id), saga=SIGN_UP.name, step=2,
                           step_name="send_welcome", action="action", participant="mailer", name="SendWelcome",
                           deadline=time.time() + 60,
                           payload={"signup_id": signup_id, "email": f"{signup_id}@example.org", "name": "Ada"})

    class Crash(Exception):
        pass

    async def scenario() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            in_window, after_ledger = f"window-{unique}", f"ledger-{unique}"
            real_record = handlers.record_sent

            async def crash(message_id: str) -> None:
                raise Crash(message_id)

            handlers.record_sent = crash           # dies between the server's 250 and the ledger's commit
            try:
                with pytest.raises(Crash):
                    await handle(conn, handlers.HANDLERS, command(in_window))
            finally:
                handlers.record_sent = real_record
            assert (await handle(conn, handlers.HANDLERS, command(in_window))).outcome == "succeeded"
            assert mails(in_window) == 2, "the bound: one more e-mail per crash in the window"
            assert (await handle(conn, handlers.HANDLERS, command(in_window))).outcome == "succeeded"
            assert mails(in_window) == 2, "a repeat of a handled command mails no more (inbox)"

            with pytest.raises(Crash):             # dies after the ledger's commit, before the command's
                async with conn.transaction():
                    await handlers.send_welcome(conn, command(after_ledger))
                    raise Crash("after the ledger")
            assert (await handle(conn, handlers.HANDLERS, command(after_ledger))).outcome == "succeeded"
            assert mails(after_ledger) == 1, "the ledger stopped the second send"

    asyncio.run(scenario())


def _reset_group_to_zero(kafka: KafkaAccess, group: str, topics: list[str]) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions

    meta = Consumer(kafka.config(**{"group.id": group})).list_topics(timeout=10)
    tps = [TopicPartition(t, p, 0) for t in topics for p in meta.topics[t].partitions]
    admin = AdminClient(kafka.config())

    def reset():
        try:
            for fut in admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)]).values():
                fut.result(timeout=10)
            return True
        except Exception as exc:  # noqa: BLE001 - the group's members may still be leaving
            return str(exc)

    poll(reset, lambda r: r is True, 60, f"the offsets of {group} reset to 0 (the group must be empty)")


def _caught_up(kafka: KafkaAccess, group: str, topics: list[str]) -> bool:
    consumer = Consumer(kafka.config(**{"group.id": group}))
    try:
        meta = consumer.list_topics(timeout=10)
        tps = [TopicPartition(t, p) for t in topics for p in meta.topics[t].partitions]
        committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(tps, timeout=10)}
        return all(committed[(tp.topic, tp.partition)] >= consumer.get_watermark_offsets(tp, timeout=10)[1]
                   for tp in tps)
    finally:
        consumer.close()


def _mailer_input(mode: str) -> tuple[str, list[str]]:
    """The mailer worker's consumer group and topics in the mode."""
    if mode == "orchestration":
        return "cdc-saga-mailer", [commands_topic("mailer")]
    from streams.sagas.choreography_runtime import subscriptions
    from streams.sagas.enabled import enabled

    return "cdc-choreography-mailer", subscriptions(enabled(), "mailer")


def test_one_welcome_per_sign_up_under_kill_9_of_the_mailer_and_the_coordinator_and_a_replay_from_offset_0(
        stack_env, signup_mode, unique, tmp_path):
    mode, workers = signup_mode
    kafka = access(stack_env, ADMIN)
    burst = int(os.environ.get("SIGNUP_BURST", "30"))   # 200 for the full invariants run
    # slowmail+: the SMTP sink takes 0.2 s per message, so the burst is still being mailed at the kill
    local = "slowmail+" if burst < 100 else ""   # a long burst is still being mailed at the kill anyway
    ids = [start(stack_env, f"{local}{i}.{unique}@example.org", f"Burst {i}") for i in range(burst)]
    poll(lambda: sum(1 for n in mail_counts(ids).values() if n), lambda n: n >= 3, 90,
         "the first welcome e-mails of the burst")
    boss = coordinator(mode)
    workers["mailer"].kill9()
    workers[boss].kill9()   # the orchestrator (or the choreography's monitor) too, mid-burst
    at_kill = sum(1 for n in mail_counts(ids).values() if n)
    assert at_kill < burst, f"the kill came after the burst ({at_kill} mailed): not mid-burst"
    for name in ("mailer", boss):
        workers[name] = saga_worker(name, mode, stack_env, tmp_path)
        workers[name].wait_healthy()
    states = {s: finish(stack_env, s)[0] for s in ids}
    assert set(states.values()) == {"COMPLETED"}, Counter(states.values())
    # each service's rows agree with how its saga ended: an account at the provider and its id here, a welcome record
    for s in ids:
        r = records(stack_env, s)
        assert r["provider"] is not None and r["accounts"] == [(s, r["provider"]["id"])] and len(r["welcome"]) == 1, r
    counts = mail_counts(ids)
    group, topics = _mailer_input(mode)
    meta = AdminClient(kafka.config()).list_topics(timeout=10)
    partitions = sum(len(meta.topics[t].partitions) for t in topics)   # one actor each, each in its own window
    assert min(counts.values()) == 1 and max(counts.values()) <= 2, counts
    assert sum(n - 1 for n in counts.values()) <= partitions, \
        f"at most one extra e-mail per partition actor in its send window at the kill: {counts}"

    # Replay the mailer's input from offset 0: every command is deduped by the inbox, no e-mail more.
    workers["mailer"].stop()
    _reset_group_to_zero(kafka, group, topics)
    workers["mailer"] = saga_worker("mailer", mode, stack_env, tmp_path)
    workers["mailer"].wait_healthy()
    poll(lambda: _caught_up(kafka, group, topics), bool, 120, f"{group} to re-read its topics to the end")
    assert mail_counts(ids) == counts, "the replay sent no e-mail"
    print(f"{mode}: {burst} sign-ups, {at_kill} mailed at the kill, "
          f"{sum(n - 1 for n in counts.values())} sent twice (bound: {partitions})")
