"""Message catalogs: every sentence the engine writes has a Chinese translation that keeps its
placeholders, and the catalogs work from the source tree with no build step."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from recommender import ContextError, Lifecycle, ValueTier
from recommender.context import CHANNEL_IDS
from recommender.i18n import EXTRACT_KEYWORDS, LOCALE_DIR, parse_locale, ptr, tr, translations

ROOT = Path(__file__).resolve().parents[1]
PO = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "recommender.po"


def extracted() -> dict[tuple[str | None, str], str]:
    """Every message id the code passes to ``tr``, ``ptr`` or ``N_``, with where it is."""
    out = {}
    for folder in ("recommender", "plugins", "api"):
        for filename, lineno, message, _, context in extract_from_dir(
            ROOT / folder, method_map=[("**.py", "python")], keywords=EXTRACT_KEYWORDS
        ):
            if isinstance(message, str):
                out[(context, message)] = f"{folder}/{filename}:{lineno}"
    return out


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.fixture(scope="module")
def po():
    with PO.open("rb") as f:
        return read_po(f, locale="zh_CN", domain="recommender")


def test_every_message_of_the_code_is_translated_with_its_placeholders(po) -> None:
    messages = extracted()
    assert len(messages) > 40  # the extraction found the engine's sentences
    for (context, message), where in messages.items():
        entry = po.get(message, context=context)
        assert entry is not None and entry.string, f"{where}: {message!r} has no translation"
        assert not entry.fuzzy, f"{where}: {message!r} is fuzzy"
        assert placeholders(entry.string) == placeholders(message), (where, entry.string)


@pytest.mark.parametrize(
    ("context", "values"),
    [
        ("tier", [t.value for t in ValueTier]),
        ("channel", list(CHANNEL_IDS)),
        ("lifecycle", [s.value for s in Lifecycle]),
    ],
)
def test_every_word_looked_up_by_context_is_translated(po, context, values) -> None:
    for value in values:
        entry = po.get(value, context=context)
        assert entry is not None and entry.string and entry.string != value, (context, value)
        assert ptr("en", context, value) == value


def test_the_catalog_has_no_message_the_code_no_longer_uses(po) -> None:
    used = set(extracted()) | {
        (c, v)
        for c, vs in (
            ("tier", [t.value for t in ValueTier]),
            ("channel", CHANNEL_IDS),
            ("lifecycle", [s.value for s in Lifecycle]),
        )
        for v in vs
    }
    stale = [(m.context, m.id) for m in po if m.id and (m.context, m.id) not in used]
    assert not stale, stale


def test_catalogs_load_from_the_po_source_without_a_compiled_file() -> None:
    assert not list(LOCALE_DIR.rglob("*.mo"))  # nothing to build: the .po is compiled on load
    assert tr("zh-CN", "{name} needs a smartphone", name="视频会员") == "视频会员需要智能手机"
    assert tr("en", "{name} needs a smartphone", name="Video") == "Video needs a smartphone"
    assert tr("zh-CN", "a sentence no catalog knows") == "a sentence no catalog knows"
    assert translations("zh-CN") is translations("zh_CN")  # loaded once


@pytest.mark.parametrize(
    ("given", "locale"),
    [("zh-CN", "zh-CN"), ("zh_CN", "zh-CN"), ("ZH-cn", "zh-CN"), ("en", "en"), (" EN ", "en")],
)
def test_locales_are_read_in_any_spelling(given, locale) -> None:
    assert parse_locale(given) == locale


@pytest.mark.parametrize("bad", ["fr", "zh", "zh-TW", "", None, 1, "en-US"])
def test_an_unknown_locale_is_refused_naming_the_field(bad) -> None:
    with pytest.raises(ContextError) as info:
        parse_locale(bad)
    assert info.value.field == "locale" and "zh-CN, en" in str(info.value)
