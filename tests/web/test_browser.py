# SPDX-License-Identifier: Apache-2.0
"""The web view in a real browser: headless Chromium loads each page of a farm that
just soaked (tests/web/conftest.py), finds what a developer looks for, logs no console
error, and leaves a full-page screenshot in the test's directory (tmp_path)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from farm.scheduler import health
from farm.store.hosts import Health
from farm.store.runs import RunState

from .conftest import (
    ADMIN_TOKEN,
    CRASH_TITLE,
    HOSTILE_LINE,
    HOSTILE_SUBJECT,
    READ_TOKEN,
    Soaked,
    drive,
    run_row,
)

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def chromium() -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    return webdriver.Chrome(options=options, service=service)


def log_in(driver: WebDriver, url: str, token: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{url}/runs")  # not logged in: sent to the login form
    assert driver.current_url.startswith(f"{url}/login")
    driver.find_element(By.NAME, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    WebDriverWait(driver, 10).until(lambda d: d.current_url == f"{url}/runs")


@pytest.fixture(scope="module")
def browser(soaked: Soaked) -> Iterator[WebDriver]:
    driver = chromium()
    try:
        log_in(driver, soaked.url, ADMIN_TOKEN)
        yield driver
    finally:
        driver.quit()


def errors(driver: WebDriver) -> list[str]:
    """The console's errors since the last call (a failed load, a CSP refusal, a
    script exception)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def screenshot(driver: WebDriver, shot: Path) -> None:
    """The whole page, not only the window (Chromium's DevTools protocol)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000)}
    png = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True, "clip": {**clip, "scale": 1}},
    )
    shot.write_bytes(base64.b64decode(png["data"]))


def visit(driver: WebDriver, url: str, shot: Path) -> str:
    """Load ``url``, screenshot the whole page into ``shot``; the page's visible text."""
    errors(driver)
    driver.get(url)
    screenshot(driver, shot)
    text: str = driver.find_element(By.TAG_NAME, "main").text
    return text


def test_the_series_page_lists_the_patches_with_lore_links(
    soaked: Soaked, browser: WebDriver, tmp_path: Path
) -> None:
    listing = visit(browser, f"{soaked.url}/series", tmp_path / "series-list.png")
    page = visit(browser, f"{soaked.url}/series/{soaked.series}", tmp_path / "series.png")

    assert "mm: account deferred THP splits" in listing
    assert "mm/thp: return 33" in page and "mm/vmscan: fewer at 30" in page
    links = browser.find_elements(By.CSS_SELECTOR, "table.patches a")
    assert len(links) == 5
    assert all(a.get_attribute("href").startswith("https://lore.kernel.org/r/") for a in links)
    assert errors(browser) == []


def test_a_hostile_subject_and_console_line_render_as_text(
    soaked: Soaked, browser: WebDriver, tmp_path: Path
) -> None:
    page = visit(browser, f"{soaked.url}/series/{soaked.series}", tmp_path / "hostile-series.png")
    run = visit(browser, f"{soaked.url}/runs/{soaked.crashed}", tmp_path / "hostile-run.png")

    # The mail's subject as intake stored it (git drops the ESC), shown as text.
    assert HOSTILE_SUBJECT.replace(" \x1b", " ") in page
    assert HOSTILE_LINE.replace("\x1b", "\\x1b") in run
    assert browser.title == f"run {soaked.crashed} · farm"  # no script retitled it
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main script, pre b") == []
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - reading it is the check
    assert errors(browser) == []


def test_the_runs_list_shows_state_host_kernel_and_verdict(
    soaked: Soaked, browser: WebDriver, tmp_path: Path
) -> None:
    text = visit(browser, f"{soaked.url}/runs", tmp_path / "runs.png")

    rows = browser.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")
    by_id = {r.find_element(By.TAG_NAME, "td").text: r.text for r in rows}
    assert "patched +05 laptop idle-loop done FAIL" in by_id[str(soaked.crashed)]
    assert "baseline base laptop idle-loop done PASS" in by_id[str(soaked.baseline)]
    assert f"crash: {CRASH_TITLE}" in text
    assert errors(browser) == []


def test_a_run_page_shows_findings_crash_console_and_counters_against_the_baseline(
    soaked: Soaked, browser: WebDriver, tmp_path: Path
) -> None:
    text = visit(browser, f"{soaked.url}/runs/{soaked.crashed}", tmp_path / "run.png")

    run = run_row(soaked.store, soaked.crashed)
    assert run.kernel_release and run.kernel_release in text
    assert CRASH_TITLE in browser.find_element(By.CSS_SELECTOR, "table.findings").text
    assert CRASH_TITLE in browser.find_element(By.CSS_SELECTOR, "details.crash summary").text
    assert "list_del corruption" in browser.find_element(By.ID, "console").text
    assert f"baseline run {soaked.baseline}" in text.replace("against ", "")
    plots = browser.find_elements(By.CSS_SELECTOR, "figure.counter")
    captions = [p.find_element(By.TAG_NAME, "figcaption").text for p in plots]
    assert "meminfo:MemFree" in captions
    lines = plots[captions.index("meminfo:MemFree")].find_elements(
        By.CSS_SELECTOR, "polyline, circle"
    )
    assert {line.get_attribute("class") for line in lines} == {"run", "baseline"}
    assert errors(browser) == []


def test_a_bisection_page_shows_the_posterior_its_runs_and_the_hours_left(
    soaked: Soaked, browser: WebDriver, tmp_path: Path
) -> None:
    listing = visit(browser, f"{soaked.url}/bisections", tmp_path / "bisections.png")
    text = visit(browser, f"{soaked.url}/bisections/{soaked.bisection}", tmp_path / "bisection.png")

    assert CRASH_TITLE in listing and CRASH_TITLE in text
    odds = browser.find_elements(By.CSS_SELECTOR, "table.odds tbody tr")
    assert len(odds) == 6  # five patches and "none"
    assert sum(float(r.text.rsplit(" ", 1)[1].rstrip("%")) for r in odds) == pytest.approx(
        100, abs=0.5
    )
    assert "P = " in browser.find_element(By.ID, "leader").text
    assert " h (" in browser.find_element(By.ID, "hours-left").text  # a forecast, not "none"
    fed = browser.find_elements(By.CSS_SELECTOR, "table.runs tbody tr td:first-child")
    assert {str(soaked.crashed), str(soaked.bisect_run)} <= {c.text for c in fed}
    steps = browser.find_elements(By.CSS_SELECTOR, "table.steps tbody tr")
    assert len(steps) >= 2  # the crash that started it, the bisect run that fed it
    assert errors(browser) == []


def test_the_hosts_pages_show_health_history_and_maintenance_from_the_admins_form(
    soaked: Soaked, browser: WebDriver, tmp_path: Path
) -> None:
    listing = visit(browser, f"{soaked.url}/hosts", tmp_path / "hosts.png")
    assert "laptop" in listing and "idle" in listing

    browser.get(f"{soaked.url}/hosts/laptop")
    browser.find_element(By.XPATH, "//button[text()='start maintenance']").click()
    WebDriverWait(browser, 10).until(lambda d: "end maintenance" in d.page_source)
    text = visit(browser, f"{soaked.url}/hosts/laptop", tmp_path / "host-maintenance.png")
    browser.find_element(By.XPATH, "//button[text()='end maintenance']").click()
    WebDriverWait(browser, 10).until(lambda d: "start maintenance" in d.page_source)

    history = browser.find_elements(By.CSS_SELECTOR, "table.history tbody tr")
    assert Health.MAINTENANCE.value in text
    states = [r.find_elements(By.TAG_NAME, "td")[2].text for r in history[:2]]
    assert states == [Health.UNKNOWN, Health.MAINTENANCE]  # newest first
    assert errors(browser) == []


def test_a_reader_sees_every_page_but_no_action(soaked: Soaked, tmp_path: Path) -> None:
    driver = chromium()
    try:
        log_in(driver, soaked.url, READ_TOKEN)
        visit(driver, f"{soaked.url}/hosts/laptop", tmp_path / "reader-host.png")
        forms = driver.find_elements(By.CSS_SELECTOR, "form.action")
        cookie = driver.get_cookie("farm_session")
    finally:
        driver.quit()

    assert forms == []
    assert cookie is not None
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")


def test_a_soaking_runs_console_grows_on_its_page_without_a_reload(
    soaked: Soaked, browser: WebDriver, tmp_path: Path
) -> None:
    with soaked.store.session() as db:  # the check a host gets after maintenance
        run_id = health.queue_check(db, soaked.config, "laptop")
    browser.get(f"{soaked.url}/runs/{run_id}")
    assert browser.find_element(By.ID, "run-state").text == RunState.QUEUED
    drive(soaked.config, soaked.store, run_id, until=RunState.SOAKING)
    with soaked.console.open("a") as console:
        console.write("[ 1.000000] farm: health check soaks\n")
    drive(soaked.config, soaked.store, run_id)  # the page polls while the run soaks

    WebDriverWait(browser, 15).until(
        lambda d: d.find_element(By.ID, "run-state").text == RunState.DONE
    )
    time.sleep(0.2)
    screenshot(browser, tmp_path / "run-live.png")
    assert "farm: health check soaks" in browser.find_element(By.ID, "console").text
    assert "run ended" in browser.find_element(By.ID, "live-note").text
    assert errors(browser) == []
