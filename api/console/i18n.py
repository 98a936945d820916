"""The console's language: its own gettext domain next to the engine's, chosen per session.

Console strings have English message ids and a Babel catalog in
``api/console/locale/zh_CN/LC_MESSAGES/console.po``, compiled in memory on first use exactly as
:mod:`recommender.i18n` compiles the engine's (a compiled ``.mo`` next to it is used when it is
at least as new). The names of channels, tiers and lifecycle stages come from the engine's own
catalog, so the console and the API's sentences use the same words.
"""

from __future__ import annotations

import gettext as _gettext
from functools import cache
from pathlib import Path
from typing import Any

from flask import Request

from recommender.i18n import LOCALES, load_catalog, ptr

DOMAIN = "console"
LOCALE_DIR = Path(__file__).parent / "locale"


@cache
def translations(locale: str) -> _gettext.NullTranslations:
    """The console catalog of ``locale`` (identity for English), loaded once per process."""
    return load_catalog(LOCALE_DIR, DOMAIN, locale)


def M_(message: str) -> str:
    """Mark a console message id for extraction where it is defined and translated later (a
    table of messages). A name of its own: the engine's ``N_`` feeds the engine's catalog."""
    return message


def gettext(locale: str, message: str, **params: Any) -> str:
    """``message`` (an English message id) in ``locale``, its ``{placeholders}`` filled."""
    text = translations(locale).gettext(message)
    return text.format(**params) if params else text


def term(locale: str, kind: str, value: str | None) -> str:
    """A channel, tier or lifecycle stage in the engine's words (``term(l, "channel", "app")``);
    other values as they are."""
    if value is None:
        return ""
    return ptr(locale, kind, value) if kind in ENGINE_TERMS else value


#: Kinds of value the engine's catalog names in each language (``msgctxt``).
ENGINE_TERMS = frozenset({"channel", "tier", "lifecycle"})


def best_locale(request: Request, default: str) -> str:
    """The browser's preferred console language among :data:`LOCALES`, else ``default``."""
    match = request.accept_languages.best_match(["zh-CN", "zh", "en"])
    if match is None:
        return default
    return "zh-CN" if match.startswith("zh") else "en"


__all__ = ["LOCALES", "M_", "best_locale", "gettext", "term", "translations"]
