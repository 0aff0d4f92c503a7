"""`make console-screenshots`: the console's main pages as PNG files (path, sagas, a saga's
timeline, dead letters), taken by headless Chromium from a console started on a free port
against the running stack. For the README and for reviews; the folder is git-ignored."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from cdc_testing.ports import free_port


def _wait(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the console exited {proc.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the console did not answer on {url} within {timeout:.0f}s")


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        raise SystemExit("headless Chromium and its driver are needed: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("console-screenshots"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cli", "console", "--port", str(port)], env=os.environ,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base + "/sagas", proc)
        browser = _browser()
        try:
            from selenium.webdriver.common.by import By

            from streams import spec as spec_mod

            pairs = spec_mod.load_enabled().pairs
            pages = {"path": "/", "pairs": "/pairs", "sagas": "/sagas", "dead-letters": "/letters",
                     **({"pair": f"/pairs/{pairs[0].name}"} if pairs else {})}
            browser.get(base + "/sagas?state=COMPENSATED")  # a timeline with compensations, if there is one
            links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#instances a, "
                                                                              "#failed a, #stuck a")]
            for name, path in pages.items():
                browser.get(base + path)
                browser.save_screenshot(str(args.out / f"{name}.png"))
                print(f"{args.out / name}.png")
            if links:
                browser.get(links[0])
                browser.save_screenshot(str(args.out / "saga-timeline.png"))
                print(f"{args.out / 'saga-timeline'}.png")
            else:
                print("no stuck or FAILED saga to show a timeline of: run the demo first")
        finally:
            browser.quit()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
