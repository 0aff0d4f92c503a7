"""The web console in a real browser (headless Chromium from Debian, driven by selenium): the path
page shows every hop and marks a stopped database within seconds; a FAILED saga is taken over from
the sagas page only with the operator token, and the decision is on its timeline."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import httpx
import psycopg
import pytest

from cdc_testing.polling import poll
from cdc_testing.ports import free_port
from cdc_testing.workers import REPO
from connectors.connect_api import ConnectClient
from services.registry import current
from streams import spec as spec_mod

pytestmark = pytest.mark.integration
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def console(stack_env, tmp_path_factory):
    assert "CONSOLE_TOKEN" in stack_env, f"`make env` prints no CONSOLE_TOKEN (run `make up`): {sorted(stack_env)}"
    port = free_port()
    log = tmp_path_factory.mktemp("console") / "console.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "cli", "console", "--port", str(port)], cwd=REPO,
                                env={**os.environ, **stack_env}, stdout=fh, stderr=subprocess.STDOUT)

    def answers() -> int | str:
        if proc.poll() is not None:
            raise AssertionError(f"the console exited {proc.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/sagas", timeout=10).status_code
        except httpx.HTTPError as exc:
            return str(exc)
    poll(answers, lambda s: s == 200, 90, "the console answering on /sagas")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM and DRIVER, "headless Chromium and its driver are needed: apt-get install chromium chromium-driver"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


def _result(browser):
    """The answer page of a form just submitted (the click returns before the browser navigates)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 60).until(expected_conditions.presence_of_element_located((By.ID, "result")))


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
