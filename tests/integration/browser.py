"""The answer page of a form submitted in the browser tests (the console's, and the saga takeover's
retry from the page); their `console` and `browser` fixtures are in conftest.py."""
from __future__ import annotations


def result(browser):
    """The answer page of a form just submitted (the click returns before the browser navigates)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 60).until(expected_conditions.presence_of_element_located((By.ID, "result")))


