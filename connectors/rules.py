"""The project's own checks of a connector config, before Connect sees it: keys Connect
treats as optional but the pipeline needs, and the conventions that keep it correct."""
from __future__ import annotations

import re
from collections.abc import Iterable

from connectors.configs import ConnectorFile

POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"
PLACEHOLDER = re.compile(r"^\$\{(env|file):[^}]+\}$")
SLOT_NAME = re.compile(r"^[a-z0-9_]+$")
FLATTENING_SMT = "io.debezium.transforms.ExtractNewRecordState"
# Keys that must come from a config provider, never be written into a committed file.
SECRET_KEYS = ("database.password",)
REQUIRED = ("database.hostname", "database.port", "database.user", "database.password", "database.dbname",
            "topic.prefix", "slot.name", "publication.name", "table.include.list", "signal.data.collection",
            "heartbeat.interval.ms", "poll.interval.ms")


def check(conn: ConnectorFile) -> list[str]:
    """Every problem of one config, each naming the key."""
    c = conn.config
    errors = [f"{key}: required" for key in REQUIRED if not c.get(key, "").strip()]
    if c.get("connector.class") != POSTGRES_CONNECTOR:
        errors.append(f"connector.class: must be {POSTGRES_CONNECTOR}, got {c.get('connector.class')!r}")
    if c.get("plugin.name") != "pgoutput":
        errors.append(f"plugin.name: must be 'pgoutput' (built into PostgreSQL), got {c.get('plugin.name')!r}")
    if c.get("publication.autocreate.mode") != "disabled":
        errors.append("publication.autocreate.mode: must be 'disabled'; the owning service's migrations create "
                      "the publication (Debezium's role does not own the tables)")
    for key in SECRET_KEYS:
        if c.get(key) and not PLACEHOLDER.match(c[key]):
            errors.append(f"{key}: must be a ${{env:...}} or ${{file:...}} placeholder, never a literal secret")
    slot = c.get("slot.name", "")
    if slot and not SLOT_NAME.match(slot):
        errors.append(f"slot.name: {slot!r} may hold only lower-case letters, digits and '_'")
    tables = [t.strip() for t in c.get("table.include.list", "").split(",") if t.strip()]
    if tables and not any(t.endswith(".outbox") for t in tables):
        errors.append("table.include.list: must include the service's outbox table (public.outbox)")
    if tables and not any(t.endswith(".debezium_heartbeat") for t in tables):
        errors.append("table.include.list: must include public.debezium_heartbeat, or heartbeats cannot advance the slot")
    try:
        if int(c.get("poll.interval.ms", "500")) >= 500:
            errors.append("poll.interval.ms: must be below Debezium's 500 ms default; it adds that much latency per hop")
    except ValueError:
        errors.append(f"poll.interval.ms: not a number: {c.get('poll.interval.ms')!r}")
    try:
        if int(c.get("heartbeat.interval.ms", "0")) <= 0:
            errors.append("heartbeat.interval.ms: must be > 0 so idle databases release WAL")
    except ValueError:
        errors.append(f"heartbeat.interval.ms: not a number: {c.get('heartbeat.interval.ms')!r}")
    for key, value in c.items():
        if key.startswith("transforms.") and key.endswith(".type") and value == FLATTENING_SMT:
            errors.append(f"{key}: row tables keep Debezium's native envelope (the LSN of every change, "
                          "deletes included, is what makes apply idempotent); remove the flattening SMT")
    chain = [t.strip() for t in c.get("transforms", "").split(",")]
    if ("sysid" not in chain or c.get("transforms.sysid.type") != "org.apache.kafka.connect.transforms.InsertField$Value"
            or c.get("transforms.sysid.static.field") != "source_system_id"
            or not PLACEHOLDER.match(c.get("transforms.sysid.static.value", ""))):
        errors.append("transforms.sysid.static.value: row events must carry the source cluster's system "
                      "identifier (InsertField source_system_id = ${env:CDC_<SERVICE>_SYSTEM_ID}), so a rebuilt "
                      "source is detected instead of its low positions being skipped as old")
    errors += _private_columns_published(conn)
    if conn.name != f"{conn.topic_prefix}-source":
        errors.append(f"name: must be '<topic.prefix>-source', i.e. {conn.topic_prefix + '-source'!r}, got {conn.name!r}")
    return [f"{conn.name}: {e}" for e in errors]


def check_all(conns: Iterable[ConnectorFile]) -> list[str]:
    conns = list(conns)
    errors = [e for conn in conns for e in check(conn)]
    for key in ("slot.name", "publication.name", "topic.prefix"):
        seen: dict[str, str] = {}
        for conn in conns:
            value = conn.config.get(key)
            if value and value in seen:
                errors.append(f"{conn.name}: {key}: {value!r} is also used by {seen[value]}; it must be unique")
            elif value:
                seen[value] = conn.name
    return errors


def _private_columns_published(conn: ConnectorFile) -> list[str]:
    """Columns the service declares private must be excluded from capture (not even in Kafka)."""
    from services.registry import current

    try:
        svc = current().service(conn.topic_prefix)
    except KeyError:
        return []
    excluded = {c.strip() for c in conn.config.get("column.exclude.list", "").split(",") if c.strip()}
    return [f"column.exclude.list: must exclude public.{table}.{col}, which {svc.name} declares private"
            for table, cols in sorted(svc.private_columns.items()) for col in cols
            if f"public.{table}.{col}" not in excluded]
