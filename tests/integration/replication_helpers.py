"""Load and checks for replication tests: random bursts on orders.customers, replica snapshots,
convergence with a readable failure."""
from __future__ import annotations

import random
import threading

import psycopg
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from observe.replication import PairReport, wait_converged
from stack.kafka_client import KafkaAccess
from streams import spec as spec_mod

SPEC = spec_mod.load()


def pairs(*names: str):
    return [SPEC.pair(n) for n in names] if names else list(SPEC.pairs)


def random_burst(url: str, ops: int, seed: int, tag: str, halfway: threading.Event | None = None) -> list[int]:
    """Inserts, updates (often several of one row in quick succession) and deletes, one
    transaction each, on customers created by this burst. Returns the ids it created."""
    rng = random.Random(seed)
    ids: list[int] = []
    done = 0
    with psycopg.connect(url, autocommit=True) as conn:
        while done < ops:
            roll = rng.random()
            if not ids or roll < 0.35:
                cid = conn.execute(
                    "INSERT INTO customers (name, email, country, address, document_number, phone) "
                    "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    (f"n-{tag}-{done}", f"{tag}-{done}@example.org", rng.choice(["ES", "GB", "US", "FR"]),
                     rng.choice([None, f"{done} Main St"]), f"DOC-{done}", "555-0100")).fetchone()[0]
                ids.append(cid)
                done += 1
            elif roll < 0.85:
                cid = rng.choice(ids)
                for i in range(rng.choice([1, 1, 3])):  # bursts of updates on one row
                    conn.execute("UPDATE customers SET name = %s, address = %s, updated_at = now() WHERE id = %s",
                                 (f"u-{tag}-{done}-{i}", rng.choice([None, "", f"{i} Side St"]), cid))
                    done += 1
            else:
                cid = ids.pop(rng.randrange(len(ids)))
                conn.execute("DELETE FROM customers WHERE id = %s", (cid,))
                done += 1
            if halfway is not None and done >= ops // 2:
                halfway.set()
    return ids


def assert_converged(env: dict[str, str], names: list[str], timeout: float = 120) -> list[PairReport]:
    reports = wait_converged(pairs(*names), env, timeout)
    bad = [r for r in reports if not r.converged]
    assert not bad, "replicas did not converge: " + "; ".join(
        f"{r.pair}: rows {r.source_rows}/{r.replica_rows}, checksums {'match' if r.checksums_match else 'differ'}, "
        f"consumer lag {r.consumer_lag}, captured {r.captured}" for r in bad)
    return reports


def replica_rows(env: dict[str, str], pair_name: str) -> dict[int, tuple]:
    pair = SPEC.pair(pair_name)
    url = env[f"{pair.target.service.upper()}_OBSERVER_URL"]
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT * FROM {pair.replica_table} ORDER BY 1").fetchall()
    return {r[0]: r for r in rows}


def positions(env: dict[str, str], pair_name: str) -> dict[int, int]:
    pair = SPEC.pair(pair_name)
    with psycopg.connect(env[f"{pair.target.service.upper()}_OBSERVER_URL"]) as conn:
        return dict(conn.execute(f"SELECT orders_customer_id, cdc_position FROM {pair.replica_table}").fetchall())


def reset_group_to_earliest(kafka: KafkaAccess, pair_name: str) -> None:
    pair = SPEC.pair(pair_name)
    admin = AdminClient(kafka.config())
    meta = admin.list_topics(pair.source_topic, timeout=10)
    parts = [TopicPartition(pair.source_topic, p, 0) for p in meta.topics[pair.source_topic].partitions]
    futures = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(pair.group_id, parts)])
    for fut in futures.values():
        fut.result(timeout=30)


class PositionWatch:
    """Samples a pair's replica positions in a thread and records every row whose position went
    down between two samples (an older version applied over a newer one)."""

    def __init__(self, env: dict[str, str], pair_name: str, interval: float = 0.05) -> None:
        self.env, self.pair_name, self.interval = env, pair_name, interval
        self.regressions: list[str] = []
        self.errors: list[BaseException] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PositionWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        seen: dict[int, int] = {}
        try:
            while not self._stop.is_set():
                for key, pos in positions(self.env, self.pair_name).items():
                    if pos < seen.get(key, 0):
                        self.regressions.append(f"customer {key}: position {seen[key]} -> {pos}")
                    seen[key] = pos
                self.samples += 1
                self._stop.wait(self.interval)
        except BaseException as exc:  # noqa: BLE001 - kept, so a test cannot pass because the sampler died
            self.errors.append(exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def stop(self) -> None:
        """Stop sampling; fail if the sampler died, sampled too little to mean anything, or saw a row go back."""
        self.close()
        assert not self.errors, f"the position sampler failed: {self.errors!r}"
        assert self.samples > 10, f"the position sampler ran only {self.samples} times"
        assert not self.regressions, f"rows went back to an older version: {self.regressions[:5]}"
