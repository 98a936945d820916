"""The console in Chinese and English, and its accessibility basics: every message
translated, every control labelled, the page's language declared, text colours readable."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from api_support import copy_workspace
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from console_support import Controls, close, console_app, sign_in, text

import api.console

CONSOLE = Path(api.console.__file__).parent
PO = CONSOLE / "locale" / "zh_CN" / "LC_MESSAGES" / "console.po"
PAGES = ["/console/", "/console/customers/", "/console/customers/C0000744",
         "/console/customers/C0000744?product=intl_roaming&network=4G&moment=failure",
         "/console/catalog/", "/console/rules/", "/console/rules/1", "/console/rules/new",
         "/console/models/", "/console/live/", "/console/reports/"]


def extracted() -> set[str]:
    """Every message id of the console's code and templates, as pybabel extracts them."""
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    keywords = {"_": None, "gettext": None, "M_": None}
    return {message for _, _, message, _, _ in
            extract_from_dir(str(CONSOLE), method_map, keywords=keywords)
            if isinstance(message, str)}


def placeholders(message: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(message) if name}


def test_every_console_message_has_a_chinese_translation_with_the_same_placeholders():
    with PO.open("rb") as f:
        catalog = read_po(f)
    translated = {m.id: m.string for m in catalog if m.id}
    messages = extracted()
    assert len(messages) > 200
    missing = sorted(m for m in messages if not translated.get(m))
    assert missing == []
    for message in messages:
        assert placeholders(translated[message]) == placeholders(message), message


@pytest.fixture(scope="module")
def app(sample_workspace, tmp_path_factory):
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("console-i18n") / "ws")
    app = console_app(ws.root)
    yield app
    close(app)


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_every_page_declares_its_language_and_labels_every_control(app, locale):
    client = app.test_client()
    sign_in(client, locale=locale)
    labelled = 0
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        controls = Controls()
        controls.feed(text(response))
        assert controls.lang == locale, path
        assert controls.unlabelled() == [], path
        labelled += len(controls.controls)
    assert labelled > 150  # the pages have that many controls: the check saw them


def test_the_chinese_console_speaks_chinese_throughout(app):
    client = app.test_client()
    sign_in(client, locale="zh-CN")
    html = text(client.get("/console/customers/C0000744?product=intl_roaming"))
    for word in ("客户 C0000744", "假设", "各渠道在各时刻的推荐", "手机营业厅", "办理成功后",
                 "国际漫游"):
        assert word in html
    visible = re.sub(r"<[^>]+>", " ", html)
    for english in ("What if", "Every channel at every moment", "Recent events", "Holdings"):
        assert english not in visible


def test_the_language_can_be_switched_and_is_kept(app):
    client = app.test_client()
    sign_in(client, locale="zh-CN")
    assert "总览" in text(client.get("/console/"))
    switched = client.get("/console/language/en?next=/catalog/")
    assert switched.status_code == 303 and switched.headers["Location"] == "/console/catalog/"
    assert "Overview" in text(client.get("/console/"))
    assert client.get("/console/language/fr").status_code == 404


def test_without_a_choice_the_browser_language_decides(app):
    client = app.test_client()
    page = client.get("/console/sign-in", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert 'lang="en"' in text(page) and "Sign in to the console" in text(page)
    other = app.test_client()
    page = other.get("/console/sign-in", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert 'lang="zh-CN"' in text(page) and "登录控制台" in text(page)


def luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize(("foreground", "background"), [
    ("text", "bg"), ("text", "surface"), ("muted", "bg"), ("muted", "surface"),
    ("link", "bg"), ("link", "surface"), ("error", "bg"), ("error", "surface"),
    ("ok", "bg"), ("ok", "surface"), ("warn", "bg"), ("accent-text", "accent"),
    ("accent", "bg")])
def test_text_colours_keep_a_contrast_of_at_least_4_5_to_1(foreground, background):
    css = (CONSOLE / "static" / "console.css").read_text()
    colours = dict(re.findall(r"--([a-z0-9-]+):\s*(#[0-9a-fA-F]{6});", css))
    assert contrast(colours[foreground], colours[background]) >= 4.5


@pytest.mark.parametrize(("a", "b", "ratio"), [("#000000", "#ffffff", 21.0),
                                                ("#777777", "#ffffff", 4.48)])
def test_the_contrast_formula(a, b, ratio):
    assert contrast(a, b) == pytest.approx(ratio, abs=0.01)


def test_pages_start_with_a_skip_link_and_mark_the_current_section(app):
    client = app.test_client()
    sign_in(client)
    html = text(client.get("/console/catalog/"))
    body = html[html.index("<body>"):]
    assert re.match(r'<body>\s*<a class="skip-link" href="#main">', body)
    assert '<main id="main" tabindex="-1">' in html
    assert re.search(r'href="/console/catalog/" aria-current="page"', html)
