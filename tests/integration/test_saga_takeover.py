"""A person takes over a FAILED saga on the real stack (`cdc saga retry|resolve`, or the console),
orchestrated or choreographed: a refund over the limit quarantines its saga; once the limit is
raised, a retry refunds the charge and the saga ends COMPENSATED, the order REJECTED (the
choreographed one is retried from the console's sagas page, in headless Chromium); another is
resolved by hand. Both are on the saga's timeline and in the operator's audit topic, with who and why."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest

from cdc_testing.polling import poll
from cdc_testing.workers import REPO
from connectors.topics import ensure_topics
from operate.audit import AUDIT_TOPIC
from stack.kafka_client import ADMIN, access
from tests.integration.browser import result
from tests.integration.saga_helpers import finish, one, order, rows, saga_workers_of, timeout_scale

pytestmark = pytest.mark.integration
MODES = ("orchestration", "choreography")
TYPE_OF = {"orchestration": "NOT LIKE '%%/%%'", "choreography": "LIKE '%%/choreographed'"}


def _cdc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **env, "COLUMNS": "250"})


def _saga(env, order_id: int, mode: str) -> tuple[str, str, str]:
    row = one(env["ORCHESTRATOR_OBSERVER_URL"], "SELECT id::text, state, coalesce(reason, '') FROM saga_instances "
              f"WHERE payload->>'order_id' = %s AND saga_type {TYPE_OF[mode]}", (str(order_id),))
    assert row is not None, f"no {mode} saga for order {order_id}"
    return row


def _taken_over(env, saga_id: str, times: int, within: float) -> list[tuple[str, str]]:
    """The saga's timeline entries of a person's decisions, once there are `times` of them (a
    choreographed saga's monitor records them as it reads the participant's event)."""
    return poll(lambda: rows(env["ORCHESTRATOR_OBSERVER_URL"], "SELECT kind, detail FROM saga_events WHERE "
                             "saga_id::text = %s AND kind IN ('retried', 'resolved') ORDER BY at, id", (saga_id,)),
                lambda found: len(found) >= times, within, f"{times} decision(s) on saga {saga_id}'s timeline")


def _set_refund_limit(env, amount: str) -> None:
    with psycopg.connect(env["PAYMENTS_DATABASE_URL"]) as conn:
        conn.execute("UPDATE payment_limits SET amount = %s WHERE name = 'refund'", (amount,))


def _retry_from_the_console(console: str, browser, env: dict[str, str], saga_id: str, who: str, why: str) -> str:
    from selenium.webdriver.common.by import By

    browser.get(console + "/sagas?refresh=0")
    form = browser.find_element(By.CSS_SELECTOR, f'#failed tr[data-saga="{saga_id}"] form.retry')
    for name, value in (("why", why), ("who", who), ("token", env["CONSOLE_TOKEN"])):
        form.find_element(By.NAME, name).send_keys(value)
    form.find_element(By.TAG_NAME, "button").click()
    return result(browser).text


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_saga_is_retried_after_its_cause_is_fixed_and_another_resolved_by_hand(
        stack_env, tmp_path, unique, reader, mode, request):
    scale = timeout_scale(stack_env, tmp_path)
    workers = saga_workers_of(mode, stack_env, tmp_path, extra_env={"CDC_SAGA_TIMEOUT_SCALE": str(scale)})
    ensure_topics(access(stack_env, ADMIN), [AUDIT_TOPIC], partitions=1)  # made by the first record otherwise
    audit = reader(AUDIT_TOPIC)
    try:
        for w in workers.values():
            w.wait_healthy()
        # 6 x 2,000.00: charged, reserved, the invoice (over 5,000.00) refused -> the refund refused for good
        retried, _ = order(stack_env, f"{unique}r", credit="100000", quantity=6, price="2000.00", on_hand=10)
        resolved, _ = order(stack_env, f"{unique}s", credit="100000", quantity=6, price="2000.00", on_hand=10)
        ends_within = 90 + 600 * scale
        for order_id in (retried, resolved):
            assert finish(stack_env, order_id, ends_within) == ("FAILED", "PENDING"), "quarantined first"
        retried_id = _saga(stack_env, retried, mode)[0]

        refused = _cdc(stack_env, "saga", "retry", retried_id, "--why", "limit unchanged", "--timeout-scale", str(scale))
        assert refused.returncode == 0, refused.stdout + refused.stderr  # allowed: it fails again, by its retries
        _taken_over(stack_env, retried_id, 1, 60)
        assert finish(stack_env, retried, ends_within) == ("FAILED", "PENDING"), "the same cause fails it again"

        _set_refund_limit(stack_env, "50000.00")
        if mode == "orchestration":
            res = _cdc(stack_env, "saga", "retry", str(retried), "--why", "refund limit raised to 50,000",
                       "--by", f"ops-{unique}", "--timeout-scale", str(scale))
            assert res.returncode == 0 and "FAILED -> COMPENSATING" in res.stdout, res.stdout + res.stderr
        else:  # the same decision from the console's sagas page, in a real browser
            said = _retry_from_the_console(request.getfixturevalue("console"), request.getfixturevalue("browser"),
                                           stack_env, retried_id, f"ops-{unique}", "refund limit raised to 50,000")
            assert "FAILED -> COMPENSATING" in said, said
        _taken_over(stack_env, retried_id, 2, 60)
        assert finish(stack_env, retried, ends_within) == ("COMPENSATED", "REJECTED")
        refunded = one(stack_env["PAYMENTS_OBSERVER_URL"], "SELECT status FROM payments WHERE orders_order_id = %s",
                       (retried,))
        assert refunded == ("REFUNDED",), f"the charge was refunded: {refunded}"
        timeline = _taken_over(stack_env, retried_id, 2, 60)
        assert [k for k, _ in timeline] == ["retried", "retried"] and f"by ops-{unique}: refund limit raised" in \
            timeline[-1][1], timeline

        res = _cdc(stack_env, "saga", "resolve", str(resolved), "--why", "refunded by bank transfer",
                   "--by", f"ops-{unique}")
        assert res.returncode == 0 and "FAILED -> RESOLVED" in res.stdout, res.stdout + res.stderr
        resolved_id = _saga(stack_env, resolved, mode)[0]
        assert "refunded by bank transfer" in _taken_over(stack_env, resolved_id, 1, 60)[-1][1]
        state = poll(lambda: _saga(stack_env, resolved, mode), lambda st: st[1] == "RESOLVED", 60,
                     f"the saga of order {resolved} RESOLVED")
        assert mode == "choreography" or "refunded by bank transfer" in state[2], state
        again = _cdc(stack_env, "saga", "resolve", str(resolved), "--why", "twice")
        assert again.returncode == 1 and "only a FAILED saga" in again.stdout, again.stdout + again.stderr

        records = audit.wait_for(lambda m: f"ops-{unique}".encode() in (m.value() or b""), 2, 60,
                                 f"the retry and the resolve by ops-{unique} in {AUDIT_TOPIC}")
        actions = sorted(json.loads(m.value())["action"] for m in records)
        assert actions == ["saga-resolve", "saga-retry"], actions
    finally:
        _set_refund_limit(stack_env, "10000.00")
        for w in workers.values():
            w.stop()
