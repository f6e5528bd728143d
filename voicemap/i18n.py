"""The interface's words in Chinese and English: gettext catalogues, one per language.

The source is ``web/translations/<lang>/LC_MESSAGES/messages.po`` (``voicemap/web/...``
once installed). Message ids are keys (``voice_count``, ``mg_review_n``), not English text:
the catalogues are read directly (no compiled ``.mo`` files to build or to go stale) and
turned into Babel ``Translations``, which Flask-Babel serves for the request's language
(``init_app``) and ``gettext``/``ngettext`` below serve for an explicit one. Placeholders are
python-format (``%(name)s``); a count message has plural forms (``msgid_plural``, the
catalogue's ``Plural-Forms`` header: zh has one form, en two) and is formatted with
``ngettext(lang, key, n)``, its count as ``%(n)s``.

Everything that shows a word to a person (the map, the venue pages, /manage, the
exhibition) takes it from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from io import BytesIO
from typing import Any

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from markupsafe import Markup, escape

from .resources import TRANSLATIONS_DIR

LANGS = ("zh", "en")
DOMAIN = "messages"

# Strings only server-rendered pages use (/manage, its play counts, the information pages'
# editor): the map page's settings leave them out.
SERVER_ONLY_STRINGS = ("mg_", "plays_")

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def po_path(lang: str):
    return TRANSLATIONS_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def catalog(lang: str) -> Catalog:
    """The language's catalogue as Babel reads it from its ``.po`` file."""
    if lang not in LANGS:
        raise KeyError(lang)
    with po_path(lang).open("rb") as f:
        return read_po(f, locale=lang, domain=DOMAIN)


@cache
def translations(lang: str) -> Translations:
    """The language's catalogue as gettext ``Translations`` (compiled in memory)."""
    buf = BytesIO()
    write_mo(buf, catalog(lang))
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def gettext(lang: str, key: str, **variables: Any) -> str:
    """The message ``key`` in ``lang``, its ``%(name)s`` placeholders filled from
    ``variables`` (a missing key shows itself)."""
    text = translations(lang).ugettext(key)
    return text % variables if variables else text


def ngettext(lang: str, key: str, n: int, **variables: Any) -> str:
    """The count message ``key`` in ``lang`` in the plural form for ``n`` ("1 voice guide",
    "2 voice guides"), with ``%(n)s`` and the other placeholders filled."""
    variables.setdefault("n", n)
    return translations(lang).ungettext(key, key, n) % variables


class Strings(dict[str, str]):
    """Every message of one language, key -> text (a count message gives its most general
    form, CLDR's "other"), with ``gettext``/``ngettext`` that format through the catalogue:
    templates write ``t.key`` for a fixed text and ``t.gettext("key", name=...)`` or
    ``t.ngettext("key", n)`` for one with placeholders."""

    def __init__(self, lang: str, items: Iterable[tuple[str, str]]) -> None:
        super().__init__(items)
        self.lang = lang

    def gettext(self, key: str, **variables: Any) -> str:
        return gettext(self.lang, key, **variables)

    def ngettext(self, key: str, n: int, **variables: Any) -> str:
        return ngettext(self.lang, key, n, **variables)

    def markup(self, key: str, **variables: Any) -> Markup:
        """``gettext`` for HTML: the message is escaped, and so is every value that is not
        already ``Markup`` (so a template can wrap one value in an element)."""
        return Markup(escape(translations(self.lang).ugettext(key))) % variables


@cache
def strings(lang: str) -> Strings:
    """Every interface string in ``lang`` ('zh' or 'en'); shared, not to be changed."""
    out = []
    for message in catalog(lang):
        if not message.id:
            continue  # the header
        key = message.id[0] if message.pluralizable else message.id
        text = message.string[-1] if message.pluralizable else message.string
        out.append((key, text))
    return Strings(lang, out)


def plural_keys(lang: str) -> frozenset[str]:
    return frozenset(m.id[0] for m in catalog(lang) if m.id and m.pluralizable)


@cache
def plural_categories(lang: str) -> tuple[str, ...]:
    """The CLDR plural category of each of the catalogue's plural forms, in order:
    ("one", "other") for en, ("other",) for zh (what ``Intl.PluralRules`` selects)."""
    rule = Locale.parse(lang).plural_form
    pick = translations(lang).plural
    names: list[str | None] = [None] * catalog(lang).num_plurals
    for n in range(1000):
        index = pick(n)
        if names[index] is None:
            names[index] = rule(n)
    return tuple(name or "other" for name in names)


@cache
def js_catalogue(lang: str, exclude: tuple[str, ...] = SERVER_ONLY_STRINGS
                 ) -> dict[str, str | dict[str, str]]:
    """The catalogue as the browser's scripts read it: key -> text for a fixed message, and
    for a count message an object keyed by CLDR plural category
    (``{"one": "%(n)s voice guide", "other": "%(n)s voice guides"}``); keys starting with
    ``exclude`` are left out."""
    names = plural_categories(lang)
    out: dict[str, str | dict[str, str]] = {}
    for message in catalog(lang):
        if not message.id:
            continue
        key = message.id[0] if message.pluralizable else message.id
        if key.startswith(exclude):
            continue
        out[key] = (dict(zip(names, message.string, strict=True)) if message.pluralizable
                    else message.string)
    return out


def js_strings(lang: str, keys: Iterable[str]) -> dict[str, str | dict[str, str]]:
    """Some messages, in the shape of ``js_catalogue`` (for a page's own settings)."""
    every = js_catalogue(lang, ())
    return {k: every[k] for k in keys}


def init_app(app, locale_selector) -> None:
    """Flask-Babel, with the request's language from ``locale_selector`` and these
    catalogues as its translations (templates get ``gettext``/``ngettext``/``_``)."""
    import flask_babel

    class CatalogueDomain(flask_babel.Domain):
        def get_translations(self):
            locale = flask_babel.get_locale()
            lang = locale.language if locale is not None else LANGS[0]
            return translations(lang if lang in LANGS else LANGS[0])

    class Babel(flask_babel.Babel):
        @property
        def domain_instance(self):
            return CatalogueDomain(domain=DOMAIN)

    Babel(app, default_locale=LANGS[0], locale_selector=locale_selector)


def check_catalogues(directory=None) -> list[str]:
    """What is wrong with the catalogues (an empty list when nothing is): Babel's own
    checks of each (``babel.messages.checkers``: plural forms against ``Plural-Forms``,
    python-format placeholders), a key or a plural in one language and not the other, a
    placeholder that differs between the languages (Babel's python-format checker, with
    English as the source) and one that does not format. ``directory`` defaults to the
    installed ``translations``."""
    from babel.messages.catalog import Message, TranslationError
    from babel.messages.checkers import python_format

    base = TRANSLATIONS_DIR if directory is None else directory
    problems: list[str] = []
    cats: dict[str, dict[str, Message]] = {}
    for lang in LANGS:
        with (base / lang / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as f:
            cat = read_po(f, locale=lang, domain=DOMAIN)
        for message, errors in cat.check():
            problems += [f"{lang} {message.id!r}: {e}" for e in errors]
        cats[lang] = {(m.id[0] if m.pluralizable else m.id): m for m in cat if m.id}
    source = cats["en"]
    for lang, messages in cats.items():
        for key in sorted(source.keys() - messages.keys()):
            problems.append(f"{lang}: {key!r} is missing")
        for key in sorted(messages.keys() - source.keys()):
            problems.append(f"{lang}: {key!r} is not in en")
    for key, en in source.items():
        en_forms = list(en.string) if en.pluralizable else [en.string]
        for lang, messages in cats.items():
            other = messages.get(key)
            if other is None:
                continue
            if other.pluralizable != en.pluralizable:
                problems.append(f"{lang} {key!r}: plural in one language only")
                continue
            forms = list(other.string) if other.pluralizable else [other.string]
            for form in forms:
                if not form:
                    problems.append(f"{lang} {key!r}: untranslated")
                    continue
                try:  # every form against English's most general one
                    python_format(None, Message(en_forms[-1], form, flags={"python-format"}))
                except TranslationError as e:
                    problems.append(f"{lang} {key!r}: {e}")
                names = dict.fromkeys(PLACEHOLDER.findall(form), 1)
                wanted = set(PLACEHOLDER.findall(en_forms[-1]))
                if other.pluralizable:  # a form for one thing may say "a" rather than 1
                    names.setdefault("n", 1)
                if set(names) != wanted:
                    problems.append(f"{lang} {key!r}: placeholders {sorted(names)}, "
                                    f"English has {sorted(wanted)}")
                try:
                    form % names
                except (KeyError, TypeError, ValueError) as e:
                    problems.append(f"{lang} {key!r}: does not format ({e!r})")
    return problems
