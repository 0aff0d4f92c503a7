"""The web console in a real browser (headless Chromium from Debian, driven by selenium): the path
page shows every hop and marks a stopped database within seconds; a FAILED saga is taken over from
the sagas page only with the operator token, and the decision is on its timeline."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import psycopg
import pytest

from cdc_testing.polling import poll
from cdc_testing.workers import REPO
from connectors.connect_api import ConnectClient
from services.registry import current
from streams import spec as spec_mod
from tests.integration.browser import result as _result

pytestmark = pytest.mark.integration
def _hops(browser) -> dict[tuple[str, str], str]:
    from selenium.webdriver.common.by import By

    return {(e.get_attribute("data-kind"), e.get_attribute("data-name")): e.get_attribute("data-state")
            for e in browser.find_elements(By.CSS_SELECTOR, ".hop")}


def test_the_path_page_shows_every_hop_and_marks_a_stopped_database(console, browser, stack_env):
    browser.get(console + "/?refresh=0")
    hops = _hops(browser)
    connect = ConnectClient(stack_env["CONNECT_URL"])
    try:
        connectors = connect.names()
    finally:
        connect.close()
    expected = {("connector", n) for n in connectors} | {("worker", p.name) for p in spec_mod.load_enabled().pairs}
    expected |= {("database", s.name) for s in current().services}
    expected |= {("topic", p.source_topic) for p in spec_mod.load_enabled().pairs}
    assert expected <= set(hops), f"hops missing from the page: {sorted(expected - set(hops))}"
    target = spec_mod.load_enabled().pairs[0].target.service
    assert hops[("database", target)] == "ok", hops
    browser.get(console + "/")  # this one reloads itself: the test only reads it from now on
    subprocess.run([sys.executable, "-m", "cli", "db", "stop", target], cwd=REPO, check=True, capture_output=True)
    try:
        def shown() -> str:
            from selenium.common.exceptions import WebDriverException

            try:
                return _hops(browser).get(("database", target), "missing")
            except WebDriverException as exc:  # caught mid-reload
                return f"reloading ({type(exc).__name__})"
        poll(shown, lambda s: s == "down", 30, f"the {target} database marked down by the page's own refresh")

        def state() -> str:
            browser.get(console + "/?refresh=0")
            return _hops(browser).get(("database", target), "missing")
        assert state() == "down" and target in browser.find_element("id", "summary").text, \
            "the summary names the hop in trouble"
    finally:
        subprocess.run([sys.executable, "-m", "cli", "db", "start", target], cwd=REPO, check=True, capture_output=True)
    poll(state, lambda s: s == "ok", 60, f"the {target} database ok again")


def test_a_failed_saga_is_resolved_from_the_page_only_with_the_operator_token(console, browser, stack_env, unique):
    from selenium.webdriver.common.by import By

    # A quarantined saga as the orchestrator leaves one (its compensation refused past every retry)
    saga_id, key = str(uuid.uuid4()), f"console-{unique}"
    with psycopg.connect(stack_env["ORCHESTRATOR_DATABASE_URL"]) as conn:
        conn.execute("INSERT INTO saga_instances (id, saga_type, business_key, state, payload, step, phase, attempt, "
                     "completed, reason) VALUES (%s, 'place-order', %s, 'FAILED', %s, 1, 'compensation', 4, '{0,1}', "
                     "'compensation of charge_payment failed: refunds over 10000.00 need a person')",
                     (saga_id, key, json.dumps({"order_id": 0})))

    def form(action: str):
        browser.get(console + "/sagas?refresh=0")  # a page reloading under the driver leaves it stale elements
        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-saga="{saga_id}"]')
        return row.find_element(By.CSS_SELECTOR, f"form.{action}")

    f = form("resolve")
    f.find_element(By.NAME, "why").send_keys("refunded by bank transfer")
    f.find_element(By.TAG_NAME, "button").click()
    assert "operator token is missing or wrong" in _result(browser).text
    state = psycopg.connect(stack_env["ORCHESTRATOR_OBSERVER_URL"]).execute(
        "SELECT state FROM saga_instances WHERE id = %s", (saga_id,)).fetchone()
    assert state == ("FAILED",), f"a refused action changes nothing: {state}"

    f = form("resolve")
    f.find_element(By.NAME, "why").send_keys("refunded by bank transfer")
    f.find_element(By.NAME, "token").send_keys(stack_env["CONSOLE_TOKEN"])
    f.find_element(By.TAG_NAME, "button").click()
    assert "FAILED -> RESOLVED" in _result(browser).text
    browser.find_element(By.LINK_TEXT, "its timeline").click()
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 60).until(expected_conditions.presence_of_element_located((By.ID, "timeline")))
    browser.get(browser.current_url.split("?")[0] + "?refresh=0")  # read it without a reload under the driver
    kinds = [e.get_attribute("data-kind") for e in browser.find_elements(By.CSS_SELECTOR, "#timeline tr[data-kind]")]
    assert "resolved" in kinds, f"the decision is on the saga's timeline: {kinds}"
    assert "refunded by bank transfer" in browser.find_element(By.ID, "timeline").text


def test_a_rejected_change_appears_under_its_reason_and_is_redriven_from_the_page_after_the_fix(
        console, browser, stack_env, unique, tmp_path):
    from selenium.webdriver.common.by import By

    from cdc_testing.workers import WorkerProcess
    from tests.integration.replication_helpers import SPEC, replica_rows

    pair = SPEC.pair("customers-to-inventory")
    name = f"reject-{unique}"
    worker = WorkerProcess(pair.name, stack_env, tmp_path)
    constraint = f"no_rejects_{unique}"
    cid = None
    try:
        worker.wait_healthy()
        with psycopg.connect(stack_env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
            # only this test's own row: another test's leftover change must not be dead-lettered here
            conn.execute(f"ALTER TABLE {pair.replica_table} ADD CONSTRAINT {constraint} "
                         f"CHECK (name <> '{name}') NOT VALID")
        with psycopg.connect(stack_env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
            cid = conn.execute("INSERT INTO customers (name, email) VALUES (%s, %s) RETURNING id",
                               (name, f"{unique}@example.org")).fetchone()[0]

        def my_row():
            browser.get(console + "/letters?refresh=0")
            rows = [r for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-letter]") if name in r.text]
            return rows[0] if rows else None
        # each load reads every dead-letter topic whole: slow on a busy box late in the tier
        row = poll(my_row, lambda r: r is not None, 180, f"the rejected change of {name} on the dead letters page")
        letter_id = row.get_attribute("data-letter")
        heading = row.find_element(By.XPATH, "./ancestor::table/preceding-sibling::h2[1]").text
        assert heading.startswith("rejected by inventory"), f"grouped under its reason: {heading!r}"

        row.find_element(By.CSS_SELECTOR, "form.redrive button").click()  # no confirm: a dry run
        assert "dry run: 1 of 1 would be re-driven" in _result(browser).text
        assert "position guard" in browser.find_element(By.ID, "plan").text

        with psycopg.connect(stack_env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
            conn.execute(f"ALTER TABLE {pair.replica_table} DROP CONSTRAINT {constraint}")
        for token, expected in (("", "operator token is missing or wrong"), (stack_env["CONSOLE_TOKEN"], "re-driven: 1 of 1")):
            f = poll(my_row, lambda r: r is not None, 120, f"{letter_id} listed").find_element(By.CSS_SELECTOR, "form.redrive")
            f.find_element(By.NAME, "why").send_keys("constraint dropped")
            if token:
                f.find_element(By.NAME, "token").send_keys(token)
            f.find_element(By.NAME, "confirm").click()
            f.find_element(By.TAG_NAME, "button").click()
            assert expected in _result(browser).text
        row = poll(lambda: replica_rows(stack_env, pair.name).get(cid), lambda r: r is not None, 90,
                   f"customer {cid} in the inventory replica after the re-drive from the console")
        assert name in row, row
        assert "redrive by" in poll(my_row, lambda r: r is not None, 120, f"{letter_id} listed").text
    finally:
        with psycopg.connect(stack_env["INVENTORY_DATABASE_URL"], autocommit=True) as conn:
            conn.execute(f"ALTER TABLE {pair.replica_table} DROP CONSTRAINT IF EXISTS {constraint}")
        # should this test fail before its re-drive, a newer change brings the row to the replica; it
        # is applied before the worker stops, so no later test reads it as a leftover of its own
        if cid is not None and replica_rows(stack_env, pair.name).get(cid) is None:
            with psycopg.connect(stack_env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
                conn.execute("UPDATE customers SET updated_at = now() WHERE id = %s", (cid,))
            poll(lambda: replica_rows(stack_env, pair.name).get(cid), lambda r: r is not None, 90,
                 f"customer {cid} in the inventory replica after the clean-up change")
        worker.stop()


def test_the_pairs_pages_show_cdc_observes_figures_and_a_pairs_newest_rows(console, browser, stack_env, unique, tmp_path):
    from selenium.webdriver.common.by import By

    from cdc_testing.workers import WorkerProcess
    from observe.replication import check_pair
    from tests.integration.replication_helpers import SPEC, replica_rows

    pair = SPEC.pair("customers-to-inventory")
    name = f"newest-{unique}"
    worker = WorkerProcess(pair.name, stack_env, tmp_path)
    try:
        worker.wait_healthy()
        with psycopg.connect(stack_env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
            cid = conn.execute("INSERT INTO customers (name, email) VALUES (%s, %s) RETURNING id",
                               (name, f"{unique}@example.org")).fetchone()[0]
        poll(lambda: replica_rows(stack_env, pair.name).get(cid), lambda r: r is not None, 90,
             f"customer {cid} in the inventory replica")
        before = check_pair(pair, stack_env)
        browser.get(console + "/pairs?refresh=0")
        rows = {r.get_attribute("data-pair"): r for r in browser.find_elements(By.CSS_SELECTOR, "#pairs tr[data-pair]")}
        assert {p.name for p in spec_mod.load_enabled().pairs} == set(rows), f"every enabled pair is listed: {sorted(rows)}"
        after = check_pair(pair, stack_env)
        shown = rows[pair.name].text
        assert any(f"{r.source_rows} / {r.replica_rows}" in shown for r in (before, after)), \
            f"the page shows observe's row counts ({before.source_rows}/{before.replica_rows}): {shown!r}"

        link = rows[pair.name].find_element(By.LINK_TEXT, pair.name).get_attribute("href")
        assert link.endswith(f"/pairs/{pair.name}"), link
        browser.get(link + "?refresh=0")  # read without a reload under the driver
        newest = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#newest tr[data-key]")]
        assert any(name in r for r in newest), f"the row just applied is among the newest: {newest[:3]}"
        assert browser.find_element(By.ID, "checksums").text.startswith(("match", "differ"))
        assert browser.find_element(By.ID, "pair-letters")  # its dead letters (the table, even when empty)
    finally:
        worker.stop()


def test_sagas_filtered_by_state_and_type_and_a_timeline_drawn_as_lanes(console, browser, stack_env, unique):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    # a compensated saga as the orchestrator records it: command out, reply back, a refund out and back
    saga_id, key = str(uuid.uuid4()), f"lanes-{unique}"
    with psycopg.connect(stack_env["ORCHESTRATOR_DATABASE_URL"]) as conn:
        conn.execute("INSERT INTO saga_instances (id, saga_type, business_key, state, payload, step, phase) "
                     "VALUES (%s, 'place-order', %s, 'COMPENSATED', %s, 1, 'compensation')",
                     (saga_id, key, json.dumps({"order_id": 0})))
        for kind, step, action, detail in (("started", None, None, "order"),
                                           ("sent", "charge_payment", "action", "ChargePayment attempt 1"),
                                           ("replied", "charge_payment", "action", "ok"),
                                           ("sent", "reserve_stock", "action", "ReserveStock attempt 1"),
                                           ("replied", "reserve_stock", "action", "failed: out of stock"),
                                           ("sent", "charge_payment", "compensation", "RefundPayment attempt 1"),
                                           ("replied", "charge_payment", "compensation", "ok"),
                                           ("ended", None, None, "COMPENSATED: out of stock")):
            conn.execute("INSERT INTO saga_events (saga_id, at, kind, step_name, action, detail) "
                         "VALUES (%s, clock_timestamp(), %s, %s, %s, %s)", (saga_id, kind, step, action, detail))

    browser.get(console + "/sagas?refresh=0")
    Select(browser.find_element(By.NAME, "state")).select_by_value("COMPENSATED")
    Select(browser.find_element(By.NAME, "type")).select_by_value("place-order")
    browser.find_element(By.CSS_SELECTOR, "#filter button").click()
    # the click returns before the browser navigates: wait for the filtered page itself
    WebDriverWait(browser, 60).until(lambda b: "state=COMPENSATED" in b.current_url and "type=place-order" in b.current_url)

    def listed() -> list[tuple[str, str, str]]:
        return [(r.get_attribute("data-instance"), r.get_attribute("data-state"), r.get_attribute("data-type"))
                for r in browser.find_elements(By.CSS_SELECTOR, "#instances tr[data-instance]")]
    rows = listed()
    assert saga_id in [i for i, _, _ in rows], f"saga {saga_id} among the COMPENSATED place-order sagas: {rows[:5]}"
    assert {(st, t) for _, st, t in rows} == {("COMPENSATED", "place-order")}, rows[:5]
    browser.get(console + "/sagas?refresh=0&state=RUNNING")
    assert saga_id not in [i for i, _, _ in listed()], "a COMPENSATED saga is not listed under RUNNING"

    browser.get(f"{console}/sagas/{saga_id}?refresh=0")
    lanes = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#lanes > text[font-weight=bold]")]
    assert lanes[0] == "coordinator" and {"payments", "inventory"} <= set(lanes), f"a lane per participant: {lanes}"
    arrows = browser.find_elements(By.CSS_SELECTOR, "#lanes g.msg")
    classes = [a.get_attribute("class") for a in arrows]
    assert len(arrows) == 6 and sum("compensation" in c for c in classes) == 2, classes
    assert sum("failed" in c for c in classes) == 1, f"the refused reply is marked: {classes}"


def test_ticked_dead_letters_are_discarded_together_from_the_page(console, browser, stack_env, unique, tmp_path):
    from confluent_kafka import Producer
    from selenium.webdriver.common.by import By

    from cdc_testing.workers import WorkerProcess
    from stack.kafka_client import ADMIN, access
    from tests.integration.replication_helpers import SPEC

    pair = SPEC.pair("customers-to-inventory")
    worker = WorkerProcess(pair.name, stack_env, tmp_path)
    try:
        worker.wait_healthy()
        producer = Producer(access(stack_env, ADMIN).config(**{"partitioner": "murmur2_random"}))
        bodies = [f"not json {unique} {i}" for i in range(3)]
        for body in bodies:
            producer.produce(pair.source_topic, key=f'{{"id": "{body}"}}'.encode(), value=body.encode(),
                             headers=[("sent-by", f"test-{unique}".encode())])
        assert producer.flush(10) == 0

        def mine():
            browser.get(console + "/letters?refresh=0")
            return [r for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-letter]") if unique in r.text]
        rows = poll(mine, lambda found: len(found) == 3, 180, f"the three malformed messages of {unique} listed")
        assert all(f"sent-by=test-{unique}" in r.text for r in rows), f"each with its original headers: {rows[0].text}"
        ids = [r.get_attribute("data-letter") for r in rows]
        for r in rows[:2]:  # tick two of the three
            r.find_element(By.CSS_SELECTOR, "input.pick").click()
        form = browser.find_element(By.ID, rows[0].find_element(By.CSS_SELECTOR, "input.pick").get_attribute("form"))
        form.find_element(By.NAME, "why").send_keys("poison from a test")
        form.find_element(By.NAME, "token").send_keys(stack_env["CONSOLE_TOKEN"])
        form.find_element(By.NAME, "confirm").click()
        form.find_element(By.CSS_SELECTOR, "button.discard-selected").click()
        assert "discarded: 2 of 2" in _result(browser).text
        planned = {r.get_attribute("data-letter") for r in browser.find_elements(By.CSS_SELECTOR, "#plan tr[data-letter]")}
        assert planned == set(ids[:2]), f"exactly the ticked letters: {planned} vs {ids[:2]}"
        listed = subprocess.run([sys.executable, "-m", "cli", "dlq", "list", "--json", pair.dead_letter_topic],
                                cwd=REPO, check=True, capture_output=True, text=True).stdout
        still = {json.loads(line)["id"] for line in listed.splitlines() if line.strip()}
        assert ids[2] in still and not set(ids[:2]) & still, "the unticked letter is still pending, the ticked ones not"
    finally:
        worker.stop()
