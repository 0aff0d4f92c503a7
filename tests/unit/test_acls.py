"""The broker ACLs derived from the declarations: workers write only their dead letters, read
only their own topics in their own group; only Connect writes captured and routed topics."""
from connectors import acls
from operate.audit import AUDIT_TOPIC
from stack.kafka_client import CONNECT, OBSERVER, OPERATOR, client_env, role_key
from streams.sagas.topics import commands_topic
from streams.spec import load_enabled


def test_workers_write_only_their_dead_letters_and_their_own_changelogs():
    changelogs = {m.group_id: set(m.changelog_topics) for m in acls.read_models()}
    for g in acls.wanted():
        if g.operation in ("WRITE", "CREATE") and g.principal not in (CONNECT, OPERATOR):
            assert g.name.startswith("dlq.") or g.name in changelogs.get(g.principal, ()), g
            assert g.principal != OBSERVER, g
        if g.operation == "CREATE" and g.principal not in (CONNECT, OPERATOR):
            assert g.name.startswith("dlq."), f"changelogs are created at deploy, not by the worker: {g}"


def test_a_read_model_reads_its_sources_and_its_changelogs_in_its_group():
    model = acls.read_models()[0]
    mine = [g for g in acls.wanted() if g.principal == model.group_id]
    assert {g.name for g in mine if g.operation == "READ" and g.resource == "topic"} == \
        {*model.sources, *model.changelog_topics}
    assert {g.name for g in mine if g.resource == "group"} == {model.group_id}


def test_the_operator_writes_only_where_a_worker_reads_and_its_audit_topic():
    wanted = acls.wanted()
    changelogs = {t for m in acls.read_models() for t in m.changelog_topics}
    consumed = {g.name for g in wanted if g.operation == "READ" and g.resource == "topic"
                and g.principal not in (OBSERVER, OPERATOR)} - changelogs
    writes = {g.name for g in wanted if g.principal == OPERATOR and g.operation in ("WRITE", "CREATE")}
    assert writes == consumed | {AUDIT_TOPIC}, writes ^ (consumed | {AUDIT_TOPIC})
    assert not any(g.name.startswith("dlq.") for g in wanted if g.principal == OPERATOR and g.operation == "WRITE")


def test_a_replication_worker_reads_only_its_source_in_its_group():
    pair = load_enabled().pairs[0]
    mine = [g for g in acls.wanted() if g.principal == acls.replication_principal(pair.name)]
    assert {g.name for g in mine if g.operation == "READ" and g.resource == "topic"} == {pair.source_topic}
    assert {g.name for g in mine if g.resource == "group"} == {pair.group_id}


def test_a_participant_reads_its_commands_not_anothers():
    mine = [g for g in acls.wanted() if g.principal == acls.saga_principal("orchestration", "payments")]
    reads = {g.name for g in mine if g.operation == "READ" and g.resource == "topic"}
    assert reads == {commands_topic("payments")}


def test_connect_reads_no_captured_topic():
    reads = [g for g in acls.wanted() if g.principal == CONNECT and g.operation in ("READ", "ALL")]
    assert all(g.name.startswith(acls.CONNECT_INTERNAL_PREFIX) or g.resource == "group" for g in reads)


def test_make_env_names():
    assert role_key("cdc-replication-a-to-b") == "REPLICATION_A_TO_B"
    env = client_env("127.0.0.1:1", {"cdc-observer": "pw"})
    assert env["KAFKA_OBSERVER_USERNAME"] == "cdc-observer" and env["KAFKA_OBSERVER_PASSWORD"] == "pw"
    assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT" and env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-256"
