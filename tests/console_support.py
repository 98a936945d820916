"""Console test support: an app over a private workspace copy, a signed-in client, the form
token of a page, and headless Chromium for the browser tests."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from api_support import ADMIN_TOKEN
from flask import Flask
from flask.testing import FlaskClient

from api import ServerSettings, create_app

ROOT = Path(__file__).resolve().parents[1]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: Where the browser tests put their screenshots: a temporary folder unless this names one
#: (``RECOMMENDER_SCREENSHOTS=docs/images/console`` refreshes those of the docs).
SCREENSHOTS_ENV = "RECOMMENDER_SCREENSHOTS"
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def console_app(root: Path, **settings: Any) -> Flask:
    """The API's app (console mounted) over ``root``, environment ignored."""
    settings.setdefault("admin_token", ADMIN_TOKEN)
    return create_app(settings=ServerSettings.load(root, environ={}, **settings))


def close(app: Flask) -> None:
    app.extensions["recommender"].slot.close()


def csrf_of(html: str) -> str:
    """The form token a page carries."""
    match = CSRF.search(html)
    assert match is not None, "the page has no form token"
    return match.group(1)


def sign_in(client: FlaskClient, token: str = ADMIN_TOKEN, locale: str = "en") -> str:
    """Sign ``client`` in through the form; returns the session's form token."""
    client.get(f"/console/language/{locale}")
    page = client.get("/console/sign-in")
    response = client.post("/console/sign-in", data={
        "token": token, "csrf_token": csrf_of(page.get_data(as_text=True))})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return csrf_of(client.get("/console/").get_data(as_text=True))


def signed_in(app: Flask) -> FlaskClient:
    """A test client of ``app`` with a console session."""
    client = app.test_client()
    sign_in(client)
    return client


def text(response: Any) -> str:
    return response.get_data(as_text=True)


class Controls(HTMLParser):
    """The form controls of a page and the labels that name them (for the label check)."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.label_depth = 0
        self.lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "label":
            self.label_depth += 1
            if a.get("for"):
                self.label_for.add(str(a["for"]))
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden" \
                and "hidden" not in a:
            self.controls.append({**a, "_wrapped": "yes" if self.label_depth else None})

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.label_depth -= 1

    def unlabelled(self) -> list[dict[str, str | None]]:
        return [c for c in self.controls
                if not c["_wrapped"] and not c.get("aria-label")
                and c.get("id") not in self.label_for]


def browser_binaries() -> tuple[str, str] | None:
    """Chromium and chromedriver, when installed (Debian: chromium, chromium-driver)."""
    browser = next((b for b in CHROMIUM if Path(b).exists()), shutil.which("chromium"))
    driver = next((d for d in CHROMEDRIVER if Path(d).exists()), shutil.which("chromedriver"))
    return (browser, driver) if browser and driver else None


def headless_chromium() -> Iterator[Any]:
    """Headless Chromium through selenium, its console messages recorded (a fixture's body);
    skips the test, saying why, only when no browser is installed."""
    binaries = browser_binaries()
    if binaries is None:
        pytest.skip("no browser: install Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver) to run the browser tests")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binaries[0]
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1366,900", "--lang=en-US", "--disable-gpu"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(binaries[1]), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot_folder(tmp_path: Path) -> Path:
    folder = os.environ.get(SCREENSHOTS_ENV)
    path = (ROOT / folder) if folder and not Path(folder).is_absolute() else \
        Path(folder) if folder else tmp_path / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
