"""Outages are not business failures, on the real stack: a saga that waits on a participant whose
capture connector is paused, or whose orchestrator was down, past every step timeout, is not
compensated: it completes once the pipeline is back, and its timeline, `/metrics` and
`observe sagas` call it an infrastructure delay (a participant that is down while the pipeline is
healthy is still a participant timeout: test_saga_timeouts.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

import httpx
import pytest

from cdc_testing.polling import poll
from cdc_testing.workers import REPO
from connectors.connect_api import ConnectClient
from observe.replication import consumer_lag
from services.ecommerce.place_order import PLACE_ORDER
from services.registry import current
from stack.kafka_client import OBSERVER, access
from streams.sagas.choreography_runtime import monitor_subscriptions
from streams.sagas.enabled import enabled
from streams.sagas.machine import step_timeout
from tests.integration.saga_helpers import (
    MODES,
    PARTICIPANTS,
    coordinator,
    finish,
    one,
    order,
    records,
    rows,
    saga_worker,
    saga_workers_of,
)

pytestmark = pytest.mark.integration
SCALE = 0.1
FAST = {"CDC_SAGA_TIMEOUT_SCALE": str(SCALE)}  # step timeouts of 1 s instead of 10 s
STEP = PLACE_ORDER.index("reserve_stock")
_DEFN = PLACE_ORDER.scaled(SCALE)
# every attempt at reserving stock timed out: without pipeline-aware deadlines the saga compensates after this
LADDER = sum(step_timeout(_DEFN, STEP, a) for a in range(1, _DEFN.steps[STEP].retries + 2))


def _events(env, order_id: int, kinds: tuple[str, ...], before: str | None = None) -> list[tuple]:
    """(kind, step name, detail) of the saga's timeline rows of these kinds (before a DB time, if given)."""
    return rows(env["ORCHESTRATOR_OBSERVER_URL"],
                "SELECT e.kind, e.step_name, e.detail FROM saga_events e JOIN saga_instances s ON s.id = e.saga_id "
                "WHERE s.business_key = %s AND e.kind = ANY(%s) AND (%s::timestamptz IS NULL OR e.at < %s::timestamptz) "
                "ORDER BY e.at, e.id", (str(order_id), list(kinds), before, before))


def _delayed_for(env, order_id: int) -> tuple[str | None, float]:
    """(saga state, seconds since the first infrastructure delay of reserve_stock, 0 if none yet)."""
    row = one(env["ORCHESTRATOR_OBSERVER_URL"],
              "SELECT s.state, coalesce(extract(epoch FROM now() - min(e.at)), 0) FROM saga_instances s "
              "LEFT JOIN saga_events e ON e.saga_id = s.id AND e.kind = 'delayed' AND e.step_name = 'reserve_stock' "
              "WHERE s.business_key = %s GROUP BY s.state", (str(order_id),))
    return (row[0], float(row[1])) if row else (None, 0.0)


def _db_now(env) -> str:
    row = one(env["ORCHESTRATOR_OBSERVER_URL"], "SELECT now()::text")
    assert row is not None
    return row[0]


def _set_paused(connect: ConnectClient, name: str, paused: bool) -> None:
    connect._check(connect.http.put(f"/connectors/{name}/{'pause' if paused else 'resume'}"))
    want = "PAUSED" if paused else "RUNNING"
    poll(lambda: connect.status(name), lambda s: s.connector == want and all(t == want for t in s.tasks), 60,
         f"connector {name} {want}")


def _metric(port: int, cause: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
             if line.startswith(f'cdc_saga_deadlines_missed{{cause="{cause}"}}')]
    assert found, text
    return found[0]


@pytest.mark.parametrize("mode", MODES)
def test_a_paused_capture_connector_delays_the_saga_past_every_timeout_and_it_completes_after_resume(
        stack_env, tmp_path, unique, mode):
    """Inventory acts, but its capture connector is paused: its answer waits in its outbox. The
    waiting side sees the connector PAUSED and moves the deadline, for longer than all of
    reserve_stock's attempts would take; after resume the saga completes, nothing compensated."""
    connect = ConnectClient(stack_env["CONNECT_URL"])
    inventory = current().service("inventory").connector
    workers = saga_workers_of(mode, stack_env, tmp_path, extra_env=FAST)
    paused = False
    try:
        for w in workers.values():
            w.wait_healthy(timeout=180)  # a loaded machine starts Faust slowly
        _set_paused(connect, inventory, True)
        paused = True
        order_id, _ = order(stack_env, unique, credit="1000", quantity=1, price="10.00")
        state, held = poll(lambda: _delayed_for(stack_env, order_id),
                           lambda r: r[0] not in (None, "RUNNING") or r[1] > LADDER + 2, 60 + LADDER,
                           f"the saga RUNNING, delayed on reserve_stock for over {LADDER + 2:.0f}s")
        assert state == "RUNNING", f"the saga left RUNNING while capture was paused: {state}, " \
                                   f"{_events(stack_env, order_id, ('timed_out', 'delayed'))}"
        resumed_at = _db_now(stack_env)
        _set_paused(connect, inventory, False)
        paused = False
        assert finish(stack_env, order_id) == ("COMPLETED", "APPROVED")
        # (another step may time out on a loaded machine: its participant's own answer was slow)
        timed_out = [e for e in _events(stack_env, order_id, ("timed_out",), before=resumed_at)
                     if e[1] == "reserve_stock"]
        assert timed_out == [], f"reserve_stock timed out while inventory's capture was paused: {timed_out}"
        delayed = _events(stack_env, order_id, ("delayed",))
        assert delayed and all(d.startswith("infrastructure delay") for _, _, d in delayed), delayed
        assert any(inventory in d and "PAUSED" in d for _, _, d in delayed), delayed
        assert _metric(workers[coordinator(mode)].port, "infrastructure_delay") >= len(delayed)
        res = subprocess.run([sys.executable, "-m", "cli", "observe", "sagas", "--stuck-after", "3600",
                              "--max-failed", "1000000"], cwd=REPO, capture_output=True, text=True,
                             env={**os.environ, **stack_env})
        assert "infrastructure delay" in res.stdout, res.stdout + res.stderr
    finally:
        if paused:
            _set_paused(connect, inventory, False)
        connect.close()
        for w in workers.values():
            w.stop()


def test_an_orchestrator_down_past_every_timeout_compensates_nothing_when_it_returns(stack_env, tmp_path, unique):
    """The orchestrator is killed with sagas in flight; their participants answer meanwhile (the
    replies wait in its topic). It stays down longer than a whole timeout ladder; back, it moves
    every pending deadline by its downtime and reads the replies: every saga completes, none
    timed out for the downtime (a saga still waiting when the first scan runs says why its
    deadline moved)."""
    mode = "orchestration"
    workers = saga_workers_of(mode, stack_env, tmp_path, extra_env=FAST)
    try:
        for w in workers.values():
            w.wait_healthy(timeout=180)  # a loaded machine starts Faust slowly
        orders = [order(stack_env, f"{unique}{i}", credit="1000", quantity=1, price="10.00")[0] for i in range(6)]
        keys = [str(o) for o in orders]
        in_flight = poll(lambda: rows(stack_env["ORCHESTRATOR_OBSERVER_URL"],
                                      "SELECT business_key FROM saga_instances WHERE business_key = ANY(%s) "
                                      "AND state = 'RUNNING' AND step >= 1", (keys,)),
                         bool, 60, "a saga of the burst in flight")
        workers["orchestrator"].kill9()
        in_flight = [r[0] for r in rows(stack_env["ORCHESTRATOR_OBSERVER_URL"],
                                        "SELECT business_key FROM saga_instances WHERE business_key = ANY(%s) "
                                        "AND state = 'RUNNING'", (keys,))]
        assert in_flight, "every saga ended before the orchestrator was killed: nothing tested"
        poll(lambda: one(stack_env["ORCHESTRATOR_OBSERVER_URL"],
                         "SELECT extract(epoch FROM now() - ticked_at) FROM saga_clock WHERE scanner = 'timeouts'"),
             lambda r: r is not None and float(r[0]) > LADDER + 2, 60 + LADDER,
             f"the orchestrator's clock stopped for over {LADDER + 2:.0f}s")
        workers["orchestrator"] = saga_worker("orchestrator", mode, stack_env, tmp_path, FAST)
        for o in orders:
            assert finish(stack_env, o) == ("COMPLETED", "APPROVED"), f"order {o}"
        # Back, the orchestrator reads the waiting replies and scans for timeouts. A saga whose reply
        # it read first got a fresh deadline (nothing was left unread); one scanned first had its
        # deadline moved by the downtime. Either way no in-flight saga timed out for the downtime.
        for key in in_flight:
            events = _events(stack_env, int(key), ("timed_out", "delayed"))
            assert not events or events[0][0] == "delayed", \
                f"saga {key} timed out for the orchestrator's downtime: {events}"
            away = [i for i, (kind, _, d) in enumerate(events) if kind == "delayed" and "orchestrator was away" in d]
            if away:
                assert all(kind == "delayed" for kind, _, _ in events[:away[0]]), \
                    f"saga {key} timed out before its deadline was moved for the downtime: {events}"
    finally:
        for w in workers.values():
            w.stop()


def _order_status(env, order_id: int) -> str | None:
    row = one(env["ORDERS_OBSERVER_URL"], "SELECT status FROM orders WHERE id = %s", (order_id,))
    return row[0] if row else None


def _monitored(env, order_ids: list[int]) -> list[tuple]:
    return rows(env["ORCHESTRATOR_OBSERVER_URL"], "SELECT payload->>'order_id', state FROM saga_instances "
                "WHERE payload->>'order_id' = ANY(%s)", ([str(o) for o in order_ids],))


def _compensation_record(env, order_id: int) -> tuple[str | None, list[tuple]]:
    """(the saga's reason, its compensation timeline as (kind, step)) as the monitor recorded them."""
    reason = one(env["ORCHESTRATOR_OBSERVER_URL"], "SELECT reason FROM saga_instances WHERE payload->>'order_id' = %s",
                 (str(order_id),))
    timeline = rows(env["ORCHESTRATOR_OBSERVER_URL"],
                    "SELECT e.kind, e.step_name FROM saga_events e JOIN saga_instances s ON s.id = e.saga_id "
                    "WHERE s.payload->>'order_id' = %s AND e.action = 'compensation' ORDER BY e.at, e.id",
                    (str(order_id),))
    return (reason[0] if reason else None), [tuple(r) for r in timeline]


def test_choreographed_sagas_complete_with_the_monitor_down_and_it_catches_up_when_back(stack_env, tmp_path,
                                                                                         unique):
    """The monitor only records the choreography: with it stopped, the participants alone carry
    one saga to completion and another through its compensations. Started afterwards, it reads
    the events it missed and records both as they happened: end states, the reason, compensations
    newest first, and nothing timed out."""
    mode = "choreography"
    participants = saga_workers_of(mode, stack_env, tmp_path, names=tuple(PARTICIPANTS))
    monitor = None
    try:
        for w in participants.values():
            w.wait_healthy(timeout=180)  # a loaded machine starts Faust slowly
        ok, _ = order(stack_env, f"{unique}ok", credit="1000", quantity=2, price="10.00")
        bad, sku = order(stack_env, f"{unique}aq", credit="1000", quantity=1, price="10.00", country="AQ")
        for order_id, status in ((ok, "APPROVED"), (bad, "REJECTED")):
            poll(lambda o=order_id: _order_status(stack_env, o), lambda s, want=status: s == want, 120,
                 f"order {order_id} {status} by the participants alone (no monitor running)")
        r = records(stack_env, bad, sku)
        assert r["payments"] == [("REFUNDED", Decimal("10.00"))] and r["stock"] == (10, 0), r
        assert r["invoices"] == [("CANCELLED",)] and r["shipments"] == [], r
        assert _monitored(stack_env, [ok, bad]) == [], "something recorded the sagas while the monitor was down"

        monitor = saga_worker(coordinator(mode), mode, stack_env, tmp_path)
        monitor.wait_healthy(timeout=180)
        assert finish(stack_env, ok) == ("COMPLETED", "APPROVED")
        assert finish(stack_env, bad) == ("COMPENSATED", "REJECTED")
        # Catching up across topics, the monitor may read a saga's last event before the others:
        # the end state comes first, the rest of the record follows; wait for all of it.
        undone = ["issue_invoice", "reserve_stock", "charge_payment", "create_order"]
        expected = ("schedule_shipment: the carrier does not serve AQ",
                    [x for step in undone for x in (("sent", step), ("replied", step))])
        poll(lambda: _compensation_record(stack_env, bad), lambda got: got == expected, 120,
             f"the monitor's record of order {bad}: (reason, compensations newest first) = {expected}")
        # everything it missed read (its group at the end of every topic it follows): still no timeout
        kafka = access(stack_env, OBSERVER)
        poll(lambda: {t: consumer_lag(kafka, "cdc-choreography-monitor", t) for t in monitor_subscriptions(enabled())},
             lambda lags: not any(lags.values()), 120, "the monitor caught up with every topic it follows")
        timed_out = rows(stack_env["ORCHESTRATOR_OBSERVER_URL"],
                         "SELECT s.payload->>'order_id', e.step_name FROM saga_events e "
                         "JOIN saga_instances s ON s.id = e.saga_id WHERE s.payload->>'order_id' = ANY(%s) "
                         "AND e.kind = 'timed_out'", ([str(ok), str(bad)],))
        assert timed_out == [], f"the monitor's absence showed up as timeouts: {timed_out}"
    finally:
        for w in [*participants.values(), *([monitor] if monitor else [])]:
            w.stop()
