"""Translations for the UI (Romanian, English, Russian) from the `.po` catalogs under `webui/locale/`.

Catalogs are compiled in memory at start-up, so no binary `.mo` file is committed or built. The current
request's language lives in a context variable, which is what the Jinja2 `_()` and Python `gettext()` read.
"""

from __future__ import annotations

import contextvars
import gettext as gettext_module
import io
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from switchboard.settings import SUPPORTED_LOCALES

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGE_NAMES: dict[str, str] = {"ro": "Română", "en": "English", "ru": "Русский"}
_current: contextvars.ContextVar[str] = contextvars.ContextVar("locale", default="en")


@cache
def translations(locale: str) -> gettext_module.NullTranslations:
    po_path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        return gettext_module.NullTranslations()
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext_module.GNUTranslations(buffer)


def set_locale(locale: str) -> contextvars.Token[str]:
    return _current.set(locale if locale in SUPPORTED_LOCALES else "en")


def current_locale() -> str:
    return _current.get()


def gettext(message: str, **params: object) -> str:
    text = translations(_current.get()).gettext(message)
    return text % params if params else text


def ngettext(singular: str, plural: str, n: int, **params: object) -> str:
    text = translations(_current.get()).ngettext(singular, plural, n)
    return text % ({"num": n} | params)


def translate_error(message: str, params: Mapping[str, object]) -> str:
    """A domain error's msgid translated and filled with its parameters."""
    text = translations(_current.get()).gettext(message)
    try:
        return text % dict(params) if params else text
    except (KeyError, ValueError, TypeError):
        return text


def negotiate(accept_language: str | None, default: str) -> str:
    """The best supported language in an Accept-Language header, else `default`."""
    if not accept_language:
        return default
    ranked: list[tuple[float, str]] = []
    for part in accept_language.split(",")[:20]:
        lang, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        ranked.append((weight, lang.split("-")[0].lower()))
    for _, lang in sorted(ranked, key=lambda item: -item[0]):
        if lang in SUPPORTED_LOCALES:
            return lang
    return default
