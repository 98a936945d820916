"""The console in a real browser: headless Chromium against ``recommender serve`` (gunicorn,
two workers) on loopback, through sign-in, the customer grid, a what-if, a rule edit with dry
run and save, a rollback and the live view. Any error in the browser's console fails the test;
each page's screenshot is kept (``RECOMMENDER_SCREENSHOTS`` names the folder, see
docs/console.md). Skipped, saying why, only when no browser is installed."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest
from api_support import ADMIN_TOKEN, call, copy_workspace, serving
from console_support import headless_chromium, screenshot_folder

from recommender.models import current_model_dir

CUSTOMER = "C0000744"
RULE = "roaming-abroad-kit"
WIDTH = 1366


@pytest.fixture(scope="module")
def chromium():
    yield from headless_chromium()


@pytest.fixture(scope="module")
def site(sample_workspace, tmp_path_factory):
    """A served workspace with two model versions (the newer served) and a real evaluation
    report of the older one."""
    folder = tmp_path_factory.mktemp("console-browser")
    ws = copy_workspace(sample_workspace, folder / "ws")
    older = current_model_dir(ws.models_path).name
    reports = ws.root / "reports"
    reports.mkdir()
    subprocess.run([sys.executable, "-m", "recommender.cli", "evaluate", "--dir", str(ws.root),
                    "--k", "10", "--bootstrap", "50", "--max-users", "400",
                    "--html", str(reports / f"{older}.html"),
                    "--json", str(reports / f"{older}.json")],
                   check=True, capture_output=True, timeout=600)
    time.sleep(1.1)  # version names carry the second they were trained in
    newer = ws.train().name
    with serving(ws.root, folder / "server.log", "--workers", "2",
                 env={"RECOMMENDER_ADMIN_TOKEN": ADMIN_TOKEN}) as (base, _):
        yield {"base": base, "ws": ws, "older": older, "newer": newer,
               "shots": screenshot_folder(folder)}


def no_console_errors(driver) -> None:
    """Fail on any error the page logged: a script error, a refused resource, a 4xx/5xx."""
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


def wait_for(condition, timeout: float = 20.0, what: str = "the page"):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def visit(driver, site, path: str) -> None:
    driver.get(site["base"] + "/console" + path)
    wait_for(lambda: driver.execute_script("return document.readyState") == "complete")
    no_console_errors(driver)


def shoot(driver, site, name: str, *, full: bool = True, element=None) -> Path:
    """A screenshot of the page (its whole height when ``full``) or of one element."""
    path = site["shots"] / f"{name}.png"
    if full or element is not None:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(WIDTH, min(int(height) + 20, 4000))
    try:
        if element is not None:
            driver.execute_script("arguments[0].scrollIntoView()", element)
            element.screenshot(str(path))
        else:
            driver.execute_script("window.scrollTo(0, 0)")
            driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(WIDTH, 900)
    return path


def by(driver, css: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def all_by(driver, css: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def test_sign_in_leads_to_the_page_asked_for(chromium, site):
    driver = chromium
    driver.get(site["base"] + f"/console/customers/{CUSTOMER}?product=intl_roaming")
    wait_for(lambda: "/console/sign-in" in driver.current_url, what="the sign-in form")
    driver.get(site["base"] + "/console/language/en?next=" +
               driver.current_url.split("/console", 1)[1])
    assert by(driver, "html").get_attribute("lang") == "en"
    field = by(driver, "#token")
    assert by(driver, "label[for=token]").text == "Admin token"
    shoot(driver, site, "sign-in", full=False)
    field.send_keys(ADMIN_TOKEN)
    by(driver, "form button[type=submit]").click()
    wait_for(lambda: f"/console/customers/{CUSTOMER}" in driver.current_url, what="sign-in")
    assert by(driver, "h1").text == f"Customer {CUSTOMER}"
    assert ADMIN_TOKEN not in driver.page_source
    no_console_errors(driver)


def test_the_customer_grid(chromium, site):
    driver = chromium
    visit(driver, site, f"/customers/{CUSTOMER}?product=intl_roaming")
    cells = all_by(driver, "td[data-cell]")
    assert len(cells) == 24
    success = by(driver, 'td[data-cell="app-success"]')
    assert "International data day-pass" in success.text
    body = call(site["base"], "POST", "/v1/recommendations", {
        "customer": {"id": CUSTOMER}, "channel": "app", "moment": "success",
        "product": "intl_roaming", "locale": "en"})[2]
    shown = [li.find_element("css selector", "strong").text
             for li in success.find_elements("css selector", "ol > li")]
    assert shown == [s["name"] for s in body["suggestions"]]
    by(driver, 'td[data-cell="app-success"] details summary').click()  # why: the reasons
    assert body["suggestions"][0]["reasons"][0] in success.text
    shoot(driver, site, "customer", full=False)
    shoot(driver, site, "customer-grid", element=by(driver, "table.grid"))
    no_console_errors(driver)


def test_a_what_if_asks_again_in_place(chromium, site):
    from selenium.webdriver.support.ui import Select

    driver = chromium
    visit(driver, site, f"/customers/{CUSTOMER}?product=intl_roaming")
    driver.execute_script("window.stillTheSamePage = true")
    Select(by(driver, "#wi-network")).select_by_value("4G")
    Select(by(driver, "#wi-channel")).select_by_value("hotline")
    Select(by(driver, "#wi-moment")).select_by_value("transaction")
    by(driver, "#what-if button[type=submit]").click()
    wait_for(lambda: "network=4G" in driver.current_url, what="the what-if answer")
    assert driver.execute_script("return window.stillTheSamePage") is True  # no reload
    detail = by(driver, "#detail-title")
    assert "hotline" in detail.text and "International roaming" in detail.text
    assert driver.switch_to.active_element == detail  # focus moves to the answer
    results = by(driver, "#results")
    assert "Asked with the terminal: network=4G." in results.text
    assert "terminal_network" in results.text  # the 5G businesses, excluded and why
    shoot(driver, site, "what-if", element=by(driver, "section[aria-labelledby=detail-title]"))
    no_console_errors(driver)


def test_a_rule_edit_with_a_dry_run_then_a_save(chromium, site):
    driver = chromium
    visit(driver, site, "/rules/")
    shoot(driver, site, "rules")
    driver.find_element("link text", RULE).click()
    wait_for(lambda: by(driver, "h1").text == f"Rule {RULE}", what="the rule form")
    priority = by(driver, "#priority")
    priority.clear()
    priority.send_keys("42")
    sample = by(driver, "#sample")
    sample.clear()
    sample.send_keys("10")
    by(driver, 'button[value="dry_run"]').click()
    dry = wait_for(lambda: all_by(driver, "#dry-run"), what="the dry run")[0]
    assert "answers change for 10 customers" in dry.text and "Nothing is saved yet." in dry.text
    rules = site["ws"].root / "rules.toml"
    assert {r["id"]: r.get("priority") for r in tomllib.loads(rules.read_text())["rule"]}[
        RULE] == 90
    shoot(driver, site, "rule-dry-run")
    no_console_errors(driver)
    by(driver, 'button[value="save"]').click()
    notice = wait_for(lambda: all_by(driver, "p.notice.ok"), what="the save")[0]
    assert "Saved rules.toml and reloaded" in notice.text
    assert {r["id"]: r.get("priority") for r in tomllib.loads(rules.read_text())["rule"]}[
        RULE] == 42
    no_console_errors(driver)


def served_versions(base: str, calls: int = 8) -> set[str]:
    return {call(base, "POST", "/v1/recommendations", {
        "customer": {"id": CUSTOMER}, "channel": "app", "moment": "query"})[2]["model_version"]
        for _ in range(calls)}


def test_a_rollback_is_served_by_every_worker(chromium, site):
    driver = chromium
    assert served_versions(site["base"]) == {site["newer"]}
    visit(driver, site, "/models/")
    shoot(driver, site, "models")
    button = by(driver, "#rollback")
    assert button.text == f"Roll back to {site['older']}"
    button.click()
    notice = wait_for(lambda: all_by(driver, "p.notice.ok"), what="the rollback")[0]
    assert f"Now serving model {site['older']} (was {site['newer']})" in notice.text
    wait_for(lambda: served_versions(site["base"]) == {site["older"]}, timeout=15,
             what="every worker to serve the older version")
    no_console_errors(driver)


def test_the_live_view_draws_traffic(chromium, site):
    driver = chromium
    stop = threading.Event()

    def traffic() -> None:
        n = 0
        while not stop.is_set():
            call(site["base"], "POST", "/v1/recommendations", {
                "customer": {"id": CUSTOMER}, "channel": "app", "moment": "query"})
            if n % 5 == 0:
                call(site["base"], "POST", "/v1/feedback", {
                    "event_id": f"browser-{n}", "request_id": f"r{n}",
                    "product": "data_daypass", "action": "impression" if n % 10 else "click",
                    "customer_id": CUSTOMER, "channel": "app", "moment": "query"})
            n += 1
            time.sleep(0.02)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        visit(driver, site, "/live/?window=all")
        points = """
            const line = (id) => document.querySelector(id + " polyline");
            return line("#chart-rps") && line("#chart-latency")
                ? line("#chart-rps").getAttribute("points").split(" ").length : 0;"""
        wait_for(lambda: driver.execute_script(points) >= 6, timeout=40,
                 what="the charts to draw a few points")  # (redrawn each poll: read in one go)
        assert float(driver.execute_script('return document.getElementById("rps").textContent')
                     ) > 0
        assert driver.execute_script('return document.querySelectorAll("#chart-funnel rect")'
                                     '.length') > 0
        shoot(driver, site, "live")
    finally:
        stop.set()
        worker.join()
    no_console_errors(driver)


@pytest.mark.parametrize(("name", "path"), [
    ("overview", "/"), ("catalog", "/catalog/?channel=hotline"), ("reports", "/reports/")])
def test_the_other_pages(chromium, site, name, path):
    visit(chromium, site, path)
    shoot(chromium, site, name)


def test_an_evaluation_report_opens(chromium, site):
    visit(chromium, site, "/reports/")
    chromium.find_element("link text", f"{site['older']}.html").click()
    wait_for(lambda: "Offline evaluation" in chromium.page_source, what="the report")
    no_console_errors(chromium)


def test_the_console_in_chinese_and_on_a_tablet(chromium, site):
    driver = chromium
    visit(driver, site, f"/language/zh-CN?next=/customers/{CUSTOMER}%3Fproduct%3Dintl_roaming")
    assert by(driver, "html").get_attribute("lang") == "zh-CN"
    assert by(driver, "h1").text == f"客户 {CUSTOMER}"
    shoot(driver, site, "customer-zh", full=False)
    driver.set_window_size(820, 1180)
    try:
        visit(driver, site, f"/customers/{CUSTOMER}?product=intl_roaming")
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 820  # the grid scrolls inside its box; the page does not
        driver.save_screenshot(str(site["shots"] / "customer-tablet.png"))
    finally:
        driver.set_window_size(WIDTH, 900)
        visit(driver, site, "/language/en?next=/")


def test_the_keyboard_reaches_the_skip_link_first(chromium, site):
    from selenium.webdriver.common.keys import Keys

    driver = chromium
    visit(driver, site, "/catalog/")
    by(driver, "body").send_keys(Keys.TAB)
    active = driver.switch_to.active_element
    assert active.get_attribute("class") == "skip-link" and active.is_displayed()
    active.send_keys(Keys.ENTER)
    assert driver.switch_to.active_element.get_attribute("id") == "main"
