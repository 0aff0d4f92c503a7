"""Can a replication slot fill the disk, or lose changes, unseen? Per connector's slot: WAL
retained behind it (current WAL - restart_lsn: what PostgreSQL keeps on disk for it), WAL not
yet confirmed (current WAL - confirmed_flush_lsn), seconds since the connector's last heartbeat
(connectors/base.json writes debezium_heartbeat every 2 s while it streams), and problems:

- the slot is missing: a connector (re)started now creates a new one at the current WAL position
  and skips every change since its stored offset;
- its WAL is lost (`max_slot_wal_keep_size` exceeded, stack/postgres.py): changes were removed
  before they were read;
- the slot is ahead of the connector's stored offset: the connector confirms a position to the slot
  only after Connect stored an offset at least as far (the slot is read first, then the offset), so
  a slot past it was dropped and recreated; the changes between were never captured;
- more WAL retained than the threshold.
Read through the read-only observer role and Connect's REST API (GET /connectors/<name>/offsets)."""
from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from connectors.configs import ConnectorFile, load_all
from connectors.connect_api import ConnectClient, cluster_url
from observe.replication import pg_lsn
from services.registry import current

DEFAULT_MAX_LAG_BYTES = 256 * 1024 * 1024


@dataclass
class SlotReport:
    connector: str
    service: str
    slot: str
    wal_lsn: int
    exists: bool = False
    active: bool | None = None
    wal_status: str | None = None
    restart_lsn: int | None = None
    confirmed_lsn: int | None = None
    offset_lsn: int | None = None          # where the connector's stored offset says it is
    heartbeat_age_s: float | None = None   # seconds since the connector last wrote its heartbeat
    problems: list[str] = field(default_factory=list)

    @property
    def retained_bytes(self) -> int | None:
        """WAL kept on disk for this slot."""
        return None if self.restart_lsn is None else max(0, self.wal_lsn - self.restart_lsn)

    @property
    def unconfirmed_bytes(self) -> int | None:
        return None if self.confirmed_lsn is None else max(0, self.wal_lsn - self.confirmed_lsn)


def offset_lsn(offset: dict | None) -> int | None:
    """The furthest source position a Debezium PostgreSQL offset records (lsn, lsn_commit, lsn_proc)."""
    if not offset:
        return None
    found = [int(v) for k, v in offset.items() if k in ("lsn", "lsn_commit", "lsn_proc") and v is not None]
    return max(found) if found else None


def judge(r: SlotReport, max_lag_bytes: int) -> list[str]:
    """The problems of one slot report (pure: unit-tested)."""
    problems = []
    if not r.exists:
        problems.append("slot missing: a restarted connector would create a new one at the current WAL position "
                        "and skip the changes since its stored offset")
        return problems
    if r.wal_status == "lost":
        problems.append("WAL the slot needs was removed (max_slot_wal_keep_size exceeded): changes are lost")
    if r.confirmed_lsn is not None and r.offset_lsn is not None and r.confirmed_lsn > r.offset_lsn:
        problems.append(f"slot ahead of the connector's stored offset ({r.confirmed_lsn - r.offset_lsn} bytes): "
                        "it was dropped and recreated; the changes between were never captured")
    if r.retained_bytes is not None and r.retained_bytes > max_lag_bytes:
        problems.append(f"{r.retained_bytes} bytes of WAL retained > {max_lag_bytes}")
    return problems


def check_slot(conn_file: ConnectorFile, env: dict[str, str], client: ConnectClient,
               max_lag_bytes: int = DEFAULT_MAX_LAG_BYTES) -> SlotReport:
    svc = current().service(conn_file.topic_prefix)
    slot = conn_file.config["slot.name"]
    with psycopg.connect(env[f"{svc.env_prefix}_OBSERVER_URL"], connect_timeout=5, autocommit=True) as conn:
        wal = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        r = SlotReport(conn_file.name, svc.name, slot, pg_lsn(wal[0] if wal else None) or 0)
        row = conn.execute("SELECT active, wal_status, restart_lsn::text, confirmed_flush_lsn::text "
                           "FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
        if row is not None:
            r.exists, r.active, r.wal_status = True, row[0], row[1]
            r.restart_lsn, r.confirmed_lsn = pg_lsn(row[2]), pg_lsn(row[3])
        beat = conn.execute("SELECT extract(epoch FROM now() - max(ts)) FROM debezium_heartbeat").fetchone()
        r.heartbeat_age_s = None if beat is None or beat[0] is None else float(beat[0])
    r.offset_lsn = offset_lsn(client.offset(conn_file.name))  # read after the slot: see the module's docstring
    r.problems = judge(r, max_lag_bytes)
    return r


def check_slots(env: dict[str, str], max_lag_bytes: int = DEFAULT_MAX_LAG_BYTES,
                services: set[str] | None = None) -> list[SlotReport]:
    """Every connector's slot (only the connectors of `services` if given)."""
    client = ConnectClient(cluster_url(env), timeout=10, rebalance_patience=10)
    try:
        return [check_slot(c, env, client, max_lag_bytes) for c in load_all()
                if services is None or c.topic_prefix in services]
    finally:
        client.close()
