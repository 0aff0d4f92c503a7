"""The broker authenticates and authorizes: no credentials or a wrong password is refused at the
door; each worker principal reads only its own topics (in its own group) and writes only its
dead-letter topic, so it cannot forge another service's saga commands."""
from __future__ import annotations

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from connectors.acls import replication_principal, saga_principal
from connectors.topics import ensure_topics
from stack.kafka_client import ADMIN, OBSERVER, KafkaAccess, access
from streams.sagas.topics import commands_topic
from streams.spec import load_enabled

pytestmark = pytest.mark.integration

SPEC = load_enabled()
PAIR, OTHER_PAIR = SPEC.pairs[0], SPEC.pairs[1]
AUTH_FAILED = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}


def _produce_error(config: dict, topic: str) -> KafkaError | None:
    """The delivery error of one message (None: delivered)."""
    errors: list[KafkaError | None] = []
    producer = Producer({**config, "message.timeout.ms": 10000, "enable.idempotence": False})
    producer.produce(topic, key=b"auth-test", value=b"{}", on_delivery=lambda err, _m: errors.append(err))
    producer.flush(20)
    assert errors, f"no delivery report for {topic} within 20s"
    return errors[0]


def _read_error(config: dict, topic: str, group: str, join: bool = False) -> KafkaError | None:
    """The error of reading one partition of `topic` from its start as `group` (None: allowed);
    without `join`, the partition is assigned (a running worker's group is not disturbed)."""
    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        # a topic it may not read is not even described to it: no leader to fetch from
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        if meta.error is not None:
            return meta.error
        if join:  # joining the group: the group's ACL is checked too
            consumer.subscribe([topic])
        else:
            consumer.assign([TopicPartition(topic, 0, 0)])
        for _ in range(20):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() and msg.error().code() != KafkaError._PARTITION_EOF:
                return msg.error()
            if msg is not None and not msg.error():
                return None
        return None  # nothing refused within 10 s (an empty topic reads nothing)
    finally:
        consumer.close()


def test_a_client_without_credentials_is_refused(stack_env):
    """The broker closes the connection of a client that does not start SASL: no metadata, no topic."""
    anonymous = Producer({"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"],  # plaintext, no SASL
                          "socket.timeout.ms": 5000, "message.timeout.ms": 8000})
    with pytest.raises(KafkaException) as refused:
        anonymous.list_topics(timeout=8)
    assert refused.value.args[0].code() in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN)
    assert _produce_error({"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]}, PAIR.source_topic) is not None


def test_a_wrong_password_is_refused(stack_env):
    good = access(stack_env, OBSERVER)
    wrong = KafkaAccess(good.bootstrap, good.username, good.password + "x")
    errors: list[KafkaError] = []
    consumer = Consumer(wrong.config(**{"group.id": "cdc-observer-auth-test", "error_cb": errors.append}))
    try:
        with pytest.raises(KafkaException):
            consumer.list_topics(timeout=8)
    finally:
        consumer.close()
    assert any(e.code() in AUTH_FAILED for e in errors), f"not an authentication failure: {errors}"


def test_the_controller_port_refuses_clients(stack_env):
    """Only the broker's own login works there: a client's SCRAM user is not one."""
    admin = access(stack_env, ADMIN)
    host = admin.bootstrap.rsplit(":", 1)[0]
    from stack.settings import StackSettings

    controller = f"{host}:{StackSettings.from_env().controller_port}"
    errors: list[KafkaError] = []
    client = Consumer(KafkaAccess(controller, admin.username, admin.password).config(
        **{"group.id": "cdc-auth-test", "error_cb": errors.append}))
    try:
        with pytest.raises(KafkaException):
            client.list_topics(timeout=8)
    finally:
        client.close()
    assert errors


def _committed_error(config: dict, group: str, topic: str) -> KafkaError | None:
    """Reading a group's committed offsets (what a worker does at start), without joining it."""
    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return None
    except KafkaException as exc:
        return exc.args[0]
    finally:
        consumer.close()


def test_a_replication_worker_reads_its_own_topic_only(stack_env):
    me = access(stack_env, replication_principal(PAIR.name)).config()
    assert _read_error(me, PAIR.source_topic, PAIR.group_id) is None
    assert _committed_error(me, PAIR.group_id, PAIR.source_topic) is None
    for foreign in (commands_topic("payments"), OTHER_PAIR.dead_letter_topic):
        err = _read_error(me, foreign, PAIR.group_id)
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (foreign, err)


def test_a_replication_worker_cannot_join_another_pairs_group(stack_env):
    me = access(stack_env, replication_principal(PAIR.name)).config()
    err = _read_error(me, PAIR.source_topic, OTHER_PAIR.group_id, join=True)
    assert err is not None and err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, err


def test_a_replication_worker_writes_its_dead_letters_but_not_saga_commands(stack_env):
    mine = access(stack_env, replication_principal(PAIR.name))
    ensure_topics(mine, [PAIR.dead_letter_topic])  # as its worker does at start: it may create it
    me = mine.config()
    assert _produce_error(me, PAIR.dead_letter_topic) is None
    err = _produce_error(me, commands_topic("payments"))
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    err = _produce_error(me, PAIR.source_topic)  # a reader never writes what it reads
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err


@pytest.mark.parametrize("mode", ["orchestration", "choreography"])
def test_a_saga_participant_cannot_write_another_participants_commands(stack_env, mode):
    mine = access(stack_env, saga_principal(mode, "payments"))
    ensure_topics(mine, ["dlq.saga.payments"])  # as its worker does at start: it may create it
    me = mine.config()
    for topic in (commands_topic("inventory"), commands_topic("payments")):  # not even its own: outbox only
        err = _produce_error(me, topic)
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (topic, err)
    assert _produce_error(me, "dlq.saga.payments") is None


def test_a_saga_participant_reads_its_commands_but_not_another_services(stack_env):
    me = access(stack_env, saga_principal("orchestration", "payments")).config()
    assert _read_error(me, commands_topic("payments"), "cdc-saga-payments") is None
    assert _committed_error(me, "cdc-saga-payments", commands_topic("payments")) is None
    err = _read_error(me, commands_topic("inventory"), "cdc-saga-payments")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    err = _read_error(me, PAIR.source_topic, "cdc-saga-payments")  # a replication topic is none of its business
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err


def test_the_observer_reads_but_never_writes(stack_env):
    me = access(stack_env, OBSERVER).config()
    assert _read_error(me, PAIR.source_topic, "cdc-observer-auth-test") is None
    err = _produce_error(me, PAIR.source_topic)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
