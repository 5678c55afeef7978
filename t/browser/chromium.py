"""What the browser drivers of the suite share: Debian's headless Chromium
through chromedriver, and TAP-ish check lines ("ok - <name>" or
"not ok - <name> # <detail>") that the .t files turn into ok()s.

Debian's chromium, chromium-driver and python3-selenium; run with
/usr/bin/python3, not a python3 from a virtualenv.
"""

import shutil
import sys
import tempfile
import traceback

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

failures = 0


def check(cond, name, detail=""):
    global failures
    if cond:
        print("ok - " + name, flush=True)
    else:
        failures += 1
        detail = " ".join(str(detail).split())[:300]
        print("not ok - " + name + (" # " + detail if detail else ""),
              flush=True)
    return cond


def start_browser(profile, size="1100,900"):
    """Headless Chromium with a fresh profile directory; no background
    networking (this machine's network is closed)."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-extensions",
                 "--window-size=" + size, "--user-data-dir=" + profile):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def click_and_wait(driver, el, timeout=15):
    """A click that loads a page: wait until a new document is complete.
    The old document's window carries a mark; selenium's staleness_of
    races Chrome ("Node with given id does not belong to the document")."""
    driver.execute_script("window.__clickOld = true")
    el.click()

    def loaded(d):
        try:
            return d.execute_script(
                "return window.__clickOld === undefined"
                " && document.readyState === 'complete'")
        except WebDriverException:
            return False  # between two documents
    WebDriverWait(driver, timeout, poll_frequency=0.05).until(loaded)


def run_in_browser(prefix, body, size="1100,900"):
    """Runs body(driver) in a fresh headless Chromium: an exception is one
    failed check ("the browser run finished"), the browser and its profile
    go in every case, and the last line counts the failures."""
    profile = tempfile.mkdtemp(prefix=prefix)
    driver = None
    try:
        driver = start_browser(profile, size)
        driver.set_page_load_timeout(20)
        body(driver)
    except Exception:
        check(False, "the browser run finished",
              traceback.format_exc().splitlines()[-1])
        traceback.print_exc(file=sys.stderr)
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    print("done %d failures" % failures, flush=True)
