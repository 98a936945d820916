"""Language: the locales the engine speaks and the gettext catalogs its sentences come from.

Every sentence the engine and the built-in strategies write has an English message id and is
translated through Babel's gettext catalogs in ``recommender/locale/<lang>/LC_MESSAGES``. The
``.po`` files are the source: they are compiled in memory on first use (a compiled ``.mo`` next
to them is used when it is at least as new), so a plain ``pip install -e .`` speaks every
locale without a build step. Placeholders use ``str.format`` names: ``{name}``.

A third-party strategy reads ``context.locale`` and may call :func:`tr` with its own English
sentence; one the catalogs do not know comes back untranslated.
"""

from __future__ import annotations

import gettext as _gettext
import io
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from .errors import ContextError

#: The locales a request may ask for, and the language each speaks.
LOCALES = ("zh-CN", "en")
#: The locale of a channel the configuration says nothing about.
DEFAULT_LOCALE = "en"
DOMAIN = "recommender"
LOCALE_DIR = Path(__file__).parent / "locale"
#: The catalog folder of each locale; English is the message ids themselves.
_FOLDERS = {"zh-CN": "zh_CN"}


def parse_locale(value: Any, field_name: str = "locale") -> str:
    """``value`` as one of :data:`LOCALES` (``zh_CN`` and any case accepted), or ContextError."""
    if isinstance(value, str):
        wanted = value.strip().replace("_", "-").lower()
        for locale in LOCALES:
            if locale.lower() == wanted:
                return locale
    raise ContextError(field_name, value, f"must be one of {', '.join(LOCALES)}")


def translations(locale: str) -> _gettext.NullTranslations:
    """The gettext catalog of ``locale`` (identity for English), loaded once per process."""
    loaded = _LOADED.get(locale)  # the request path: a canonical locale, already loaded
    if loaded is None:
        canonical = parse_locale(locale)
        loaded = _load(canonical)
        if locale == canonical:
            _LOADED[locale] = loaded
    return loaded


#: Catalogs by canonical locale (other spellings are parsed each time: the dict stays small).
_LOADED: dict[str, _gettext.NullTranslations] = {}


@cache
def _load(locale: str) -> _gettext.NullTranslations:
    return load_catalog(LOCALE_DIR, DOMAIN, locale)


def load_catalog(locale_dir: Path, domain: str, locale: str) -> _gettext.NullTranslations:
    """The gettext catalog ``<locale_dir>/<lang>/LC_MESSAGES/<domain>.po`` of ``locale``
    (identity for English), compiled in memory; a ``.mo`` at least as new is used as is.
    Other gettext domains (the console's) load theirs with it."""
    folder = _FOLDERS.get(parse_locale(locale))
    if folder is None:
        return _gettext.NullTranslations()
    directory = locale_dir / folder / "LC_MESSAGES"
    po, mo = directory / f"{domain}.po", directory / f"{domain}.mo"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as f:
            return Translations(f, domain=domain)
    with po.open("rb") as f:
        catalog = read_po(f, locale=folder, domain=domain)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=domain)


def tr(locale: str, message: str, **params: Any) -> str:
    """``message`` (an English message id) in ``locale``, its ``{placeholders}`` filled."""
    text = translations(locale).gettext(message)
    return text.format(**params) if params else text


def ptr(locale: str, context: str, message: str) -> str:
    """A word that means different things in different places (``ptr(l, "tier", "high")``)."""
    return translations(locale).pgettext(context, message)


def join(locale: str, items: Iterable[str]) -> str:
    """A list of names: ``a, b`` in English, ``a、b`` in Chinese."""
    return tr(locale, ", ").join(items)


def percent(locale: str, share: float) -> str:
    """A share as a whole percentage (``61%``)."""
    return tr(locale, "{value}%", value=round(share * 100))


def N_(message: str) -> str:
    """Mark a message id for extraction where it is defined and translated later (a table)."""
    return message


#: Extraction keywords for Babel (``pybabel extract -k tr:2 -k ptr:2c,3 -k N_``): the message is the
#: second argument of ``tr`` and the third of ``ptr``, whose second is the context.
EXTRACT_KEYWORDS = {"tr": (2,), "ptr": ((2, "c"), 3), "N_": None}


__all__ = [
    "DEFAULT_LOCALE",
    "EXTRACT_KEYWORDS",
    "LOCALES",
    "N_",
    "join",
    "parse_locale",
    "percent",
    "ptr",
    "tr",
    "translations",
]
