"""Who may do what on the broker, derived from the declarations (connector configs, replication
pairs, saga subscriptions), never written by hand; `sync` applies it with the admin principal.

- cdc-admin (super user): creates topics, ACLs and credentials; tests and benches.
- cdc-connect: its own topics (_connect-*) and group, and writes every captured and routed topic
  (creating it if Debezium needs); reads nothing else.
- cdc-observer: reads and describes topics, describes groups (`cdc observe`, the demo), joins only
  groups named cdc-observer-*.
- cdc-operator: reads the dead-letter topics (dlq.*), writes and reads the operator's audit
  topic, and writes (re-drives) to the topics workers consume, nothing else.
- cdc-replication-<pair>: reads its pair's source topic in its group, writes its dead letters.
- cdc-saga-<worker> / cdc-choreography-<worker>: reads its subscriptions in its group, writes its
  dead letters; saga messages leave through outboxes (Connect), so it writes nothing else. It may
  describe the groups (and their topics) of the participants it waits for: a step's timeout asks
  whether the pipeline, not the participant, holds the answer.
- cdc-readmodel-<name>: reads its sources in its group, writes its dead letters, reads and writes
  its tables' changelog topics (created at deploy, never by the worker).

The broker refuses everything else (allow.everyone.if.no.acl.found=false)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from stack.kafka_client import ADMIN, CONNECT, OBSERVER, OPERATOR, PREFIX, KafkaAccess

OBSERVER_GROUP_PREFIX = "cdc-observer-"
CONNECT_GROUP = "cdc-connect"
CONNECT_INTERNAL_PREFIX = "_connect-"
SCRAM_ITERATIONS = 4096

TOPIC, GROUP = ResourceType.TOPIC, ResourceType.GROUP
LITERAL, PREFIXED = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
READ, WRITE, CREATE, DESCRIBE = AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DESCRIBE
DESCRIBE_CONFIGS, ALL = AclOperation.DESCRIBE_CONFIGS, AclOperation.ALL


@dataclass(frozen=True, order=True)
class Grant:
    principal: str       # user name, without "User:"
    resource: str        # "topic" or "group"
    name: str
    pattern: str         # "literal" or "prefixed"
    operation: str       # AclOperation name

    def binding(self) -> AclBinding:
        return AclBinding(TOPIC if self.resource == "topic" else GROUP, self.name,
                          LITERAL if self.pattern == "literal" else PREFIXED, f"User:{self.principal}", "*",
                          AclOperation[self.operation], AclPermissionType.ALLOW)


def _grants(principal: str, resource: str, names: Iterable[str], ops: Iterable[AclOperation],
            pattern: str = "literal") -> list[Grant]:
    return [Grant(principal, resource, n, pattern, op.name) for n in names for op in ops]


# --- principals ---------------------------------------------------------------------------
def replication_principal(pair: str) -> str:
    return f"cdc-replication-{pair}"  # = its consumer group (streams/spec.py)


def saga_principal(mode: str, worker: str) -> str:
    from streams.sagas.handover import GROUP_PREFIX

    return GROUP_PREFIX[mode] + worker  # = its Faust app id and consumer group


def saga_workers() -> list[tuple[str, str]]:
    """(mode, worker name) of every saga worker of the enabled sagas, both modes."""
    from streams.sagas.worker import MODES, names

    return [(m, n) for m in MODES for n in names(m)]


def read_models() -> list:
    """The enabled domains' read models (streams.read_models.plugin.ReadModel)."""
    from services.registry import current

    return list(current().read_models)


def principals() -> list[str]:
    """Every SCRAM user of the stack (the admin's is made when the storage is formatted)."""
    from streams.spec import load_enabled

    return [ADMIN, CONNECT, OBSERVER, OPERATOR, *(replication_principal(p.name) for p in load_enabled().pairs),
            *(saga_principal(m, n) for m, n in saga_workers()), *(m.group_id for m in read_models())]


# --- what each may do -----------------------------------------------------------------------
def connect_grants(connector_topics: Iterable[str], topic_prefixes: Iterable[str]) -> list[Grant]:
    grants = _grants(CONNECT, "topic", [CONNECT_INTERNAL_PREFIX], [ALL], "prefixed")
    grants += _grants(CONNECT, "group", [CONNECT_GROUP], [READ])
    writes = [WRITE, DESCRIBE, CREATE, DESCRIBE_CONFIGS]
    grants += _grants(CONNECT, "topic", connector_topics, writes)
    # Debezium names a service's topics <topic.prefix>.<schema>.<table>: a table captured later too
    grants += _grants(CONNECT, "topic", [f"{p}." for p in topic_prefixes], writes, "prefixed")
    return grants


def observer_grants() -> list[Grant]:
    return (_grants(OBSERVER, "topic", ["*"], [READ, DESCRIBE, DESCRIBE_CONFIGS])
            + _grants(OBSERVER, "group", ["*"], [DESCRIBE])
            + _grants(OBSERVER, "group", [OBSERVER_GROUP_PREFIX], [READ], "prefixed"))


def operator_grants(redrive_targets: Iterable[str]) -> list[Grant]:
    from operate.audit import AUDIT_TOPIC
    from operate.letters import DLQ_PREFIX, READ_GROUP

    return (_grants(OPERATOR, "topic", [DLQ_PREFIX], [READ, DESCRIBE], "prefixed")
            + _grants(OPERATOR, "topic", [AUDIT_TOPIC], [READ, WRITE, DESCRIBE, CREATE])
            + _grants(OPERATOR, "group", [READ_GROUP], [READ])
            + _grants(OPERATOR, "topic", sorted(set(redrive_targets)), [WRITE, DESCRIBE]))


def consumer_grants(principal: str, group: str, reads: Iterable[str], dead_letters: str) -> list[Grant]:
    """A worker: reads `reads` in `group`, writes (and may create) its dead-letter topic."""
    return (_grants(principal, "topic", reads, [READ, DESCRIBE, DESCRIBE_CONFIGS])
            + _grants(principal, "group", [group], [READ])
            + _grants(principal, "topic", [dead_letters], [WRITE, DESCRIBE, CREATE]))


def pair_grants(pair) -> list[Grant]:  # a streams.spec.ReplicationPair
    principal = replication_principal(pair.name)
    return consumer_grants(principal, pair.group_id, [pair.source_topic], pair.dead_letter_topic)


def saga_worker_topics(mode: str, worker: str) -> list[str]:
    """The topics a saga worker subscribes to (as streams/sagas/apps.py and choreography_apps.py build them)."""
    from streams.sagas.choreography_runtime import monitor_subscriptions, subscriptions
    from streams.sagas.enabled import enabled
    from streams.sagas.topics import commands_topic, replies_topic

    sagas = enabled()
    if mode == "orchestration":
        if worker == "orchestrator":
            return [*sagas.start_topics, *(replies_topic(p.name) for p in sagas.plugins)]
        return [commands_topic(worker)]
    return monitor_subscriptions(sagas) if worker == "monitor" else subscriptions(sagas, worker)


def probed_by(mode: str, worker: str) -> tuple[list[str], list[str]]:
    """(groups, topics) a saga worker describes before it lets a step time out: the consumer group
    of each participant it waits for, and the topics that group reads (streams/sagas/pipeline.py)."""
    from streams.sagas.enabled import enabled
    from streams.sagas.handover import GROUP_PREFIX

    sagas = enabled()
    if mode == "orchestration":
        asked = list(sagas.participants(mode)) if worker == "orchestrator" else []
    else:
        asked = [p for p in sagas.participants(mode) if p != worker] if worker != "monitor" else []
    topics = [t for p in asked for t in saga_worker_topics(mode, p)]
    return [GROUP_PREFIX[mode] + p for p in asked], list(dict.fromkeys(topics))


def saga_grants(mode: str, worker: str) -> list[Grant]:
    from streams.sagas.enabled import enabled
    from streams.sagas.handover import GROUP_PREFIX, start_readers, starter

    principal = saga_principal(mode, worker)
    grants = consumer_grants(principal, principal, saga_worker_topics(mode, worker), f"dlq.saga.{worker}")
    groups, topics = probed_by(mode, worker)
    grants += _grants(principal, "group", groups, [DESCRIBE]) + _grants(principal, "topic", topics, [DESCRIBE])
    # switching modes: a start topic's reader looks where the other mode's starter stopped
    other = next(m for m in GROUP_PREFIX if m != mode)
    for plugin in enabled().plugins:
        if worker in start_readers(plugin, mode):
            grants += _grants(principal, "group", [GROUP_PREFIX[other] + starter(plugin, other)], [DESCRIBE])
    return grants


def read_model_grants(model) -> list[Grant]:  # a streams.read_models.plugin.ReadModel
    grants = consumer_grants(model.group_id, model.group_id, model.sources, model.dead_letter_topic)
    return grants + _grants(model.group_id, "topic", model.changelog_topics, [READ, WRITE, DESCRIBE, DESCRIBE_CONFIGS])


def wanted() -> list[Grant]:
    from connectors.configs import load_all
    from streams.spec import load_enabled

    conns = load_all()
    grants = connect_grants([t for c in conns for t in c.all_topics()], [c.topic_prefix for c in conns])
    grants += observer_grants()
    grants += operator_grants([p.source_topic for p in load_enabled().pairs]
                              + [t for m, w in saga_workers() for t in saga_worker_topics(m, w)]
                              + [t for m in read_models() for t in m.sources])
    for pair in load_enabled().pairs:
        grants += pair_grants(pair)
    for mode, worker in saga_workers():
        grants += saga_grants(mode, worker)
    for model in read_models():
        grants += read_model_grants(model)
    return sorted(set(grants))


# --- applying them --------------------------------------------------------------------------
def _admin(admin: KafkaAccess) -> AdminClient:
    return AdminClient(admin.config())


def upsert_users(admin: KafkaAccess, credentials: dict[str, str]) -> None:
    """SCRAM credentials of these users (name -> password); an existing user gets the password again."""
    if not credentials:
        return
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, SCRAM_ITERATIONS)
    client = _admin(admin)  # held until the futures resolve (they fail once it is garbage)
    futures = client.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(user, info, password.encode()) for user, password in credentials.items()])
    for fut in futures.values():
        fut.result(timeout=30)


def _existing(client: AdminClient) -> list[AclBinding]:
    flt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,  # type: ignore[arg-type]
                           AclOperation.ANY, AclPermissionType.ANY)  # None: any name, principal, host
    return list(client.describe_acls(flt).result(timeout=30))


def _grant_of(b: AclBinding) -> Grant | None:
    principal = b.principal.removeprefix("User:")
    if (b.restype not in (TOPIC, GROUP) or b.resource_pattern_type not in (LITERAL, PREFIXED)
            or b.permission_type != AclPermissionType.ALLOW or b.host != "*"):
        return None
    return Grant(principal, "topic" if b.restype == TOPIC else "group", b.name,
                 "literal" if b.resource_pattern_type == LITERAL else "prefixed", AclOperation(b.operation).name)


def sync(admin: KafkaAccess, grants: list[Grant], keep: Iterable[str] = ()) -> tuple[int, int]:
    """Make the broker's ACLs of the stack's principals (cdc-*) exactly `grants`; ACLs of other
    principals, and those of principals in `keep` (test-only workers), are left alone.
    Returns (added, removed)."""
    client = _admin(admin)
    current = _existing(client)
    want = set(grants)
    have = {g for g in (_grant_of(b) for b in current) if g is not None}
    add = sorted(want - have)
    keep = set(keep)
    stale = [b for b in current if b.principal.startswith(f"User:{PREFIX}")
             and b.principal.removeprefix("User:") not in keep and _grant_of(b) not in want]
    if add:
        for fut in client.create_acls([g.binding() for g in add]).values():
            fut.result(timeout=30)
    if stale:
        filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                                    b.permission_type) for b in stale]
        for fut in client.delete_acls(filters).values():
            fut.result(timeout=30)
    return len(add), len(stale)


def grant(admin: KafkaAccess, grants: list[Grant]) -> None:
    """Add these ACLs (idempotent), leaving every other in place: a test-only or bench worker's."""
    if grants:
        client = _admin(admin)
        for fut in client.create_acls([g.binding() for g in grants]).values():
            fut.result(timeout=30)


def revoke(admin: KafkaAccess, grants: list[Grant]) -> None:
    if grants:
        filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                                    b.permission_type) for b in (g.binding() for g in grants)]
        client = _admin(admin)
        for fut in client.delete_acls(filters).values():
            fut.result(timeout=30)


def provision_pair(admin: KafkaAccess, pair, password: str) -> dict[str, str]:
    """A pair outside the enabled spec (a test's or a bench's `--spec` file): its user and ACLs,
    and the variables its worker process needs (`cdc worker` reads them from its environment)."""
    from stack.kafka_client import password_var, username_var

    principal = replication_principal(pair.name)
    upsert_users(admin, {principal: password})
    grant(admin, pair_grants(pair))
    return {username_var(principal): principal, password_var(principal): password}
