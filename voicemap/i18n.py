"""The interface's words in Chinese and English: one catalogue per language.

Everything that shows a word to a person (the map, the venue pages, /manage, the exhibition)
takes it from here.
"""

from __future__ import annotations

import json
from functools import cache

from .resources import I18N_FILE

LANGS = ("zh", "en")

# Strings only server-rendered pages use (/manage, its play counts, the information pages'
# editor): the map page's settings leave them out.
SERVER_ONLY_STRINGS = ("mg_", "plays_")


@cache
def _all_strings() -> dict[str, dict[str, str]]:
    return json.loads(I18N_FILE.read_text(encoding="utf-8"))


def strings(lang: str) -> dict[str, str]:
    """Every interface string in ``lang`` ('zh' or 'en')."""
    return _all_strings()[lang]
