"""The map's formatting modules (web/static/vm/map/format.js, facts.js) run by Node.js.

The formatter's contract with the catalogues: a message is a string or plural forms keyed
by CLDR category, chosen by Intl.PluralRules (falling back to "other"), with placeholders
written "{n}" or gettext's "%(n)s" / "%(n)d". Ages and access facts come from one table
(web/static/vm/facts.json) for the venue page (Python) and the map's popup (JavaScript):
both must read the same for every case.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from voicemap import i18n, venue_text

MAP = Path(__file__).resolve().parent.parent / "web" / "static" / "vm" / "map"


def run_module(module: str, expression: str):
    """``expression`` evaluated by Node.js with ``m`` = the named module of web/static/vm/map."""
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "Node.js is needed (scripts/setup installs it for the map's assets)"
    url = (MAP / module).as_uri()
    script = (f"import * as m from {json.dumps(url)};\n"
              f"console.log(JSON.stringify({expression}));")
    res = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


FORMS = {"one": "{n} voice guide", "other": "{n} voice guides"}


@pytest.mark.parametrize(("lang", "n", "expected"), [
    ("en", 1, "1 voice guide"), ("en", 2, "2 voice guides"), ("en", 0, "0 voice guides"),
    ("zh", 1, "1 voice guides"),  # Chinese has one form: "other"
])
def test_plural_forms_are_chosen_by_the_languages_rules(lang, n, expected):
    got = run_module("format.js", f"(m.setLocale({json.dumps(lang)}), "
                                  f"m.fmt({json.dumps(FORMS)}, {{n: {n}}}))")
    assert got == expected


def test_a_missing_category_falls_back_to_other():
    got = run_module("format.js", "(m.setLocale('en'), m.fmt({other: '%(n)d venues'}, {n: 1}))")
    assert got == "1 venues"


def test_the_count_may_be_given_apart_from_a_formatted_number():
    got = run_module("format.js", "(m.setLocale('en'), m.fmt({one: '{n} venue', other: "
                                  "'{n} venues'}, {n: (1234).toLocaleString('en')}, 1234))")
    assert got == "1,234 venues"


@pytest.mark.parametrize(("message", "expected"), [
    ("{name}, {age}", "Mia, 7"),
    ("%(name)s, %(age)d", "Mia, 7"),
    ("%(name)s is 100%% {age}", "Mia is 100% 7"),
    ("{name} {unknown}", "Mia {unknown}"),
])
def test_placeholders_in_either_style(message, expected):
    got = run_module("format.js", f"m.fmt({json.dumps(message)}, {{name: 'Mia', age: 7}})")
    assert got == expected


@pytest.mark.parametrize(("metres", "en", "zh"), [
    (3, "10 m", "10 米"), (849, "850 m", "850 米"), (1234, "1.2 km", "1.2 公里"),
    (12400, "12 km", "12 公里"),
])
def test_distance_reads_at_walking_scale(metres, en, zh):
    for lang, expected in (("en", en), ("zh", zh)):
        t = {k: i18n.strings(lang)[k] for k in ("distance_m", "distance_km")}
        got = run_module("format.js", f"m.formatDistance({metres}, {json.dumps(t)})")
        assert got == expected


AGES = [None, 0, 3, 12, 17]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_popup_ages_and_access_read_as_the_venue_pages(lang):
    t = i18n.strings(lang)
    cases = [{"min_age": lo, "max_age": hi, "step_free": a, "stroller_friendly": b,
              "baby_care_room": c}
             for lo, hi in itertools.product(AGES, AGES)
             for a, b, c in [(None, None, None), (True, False, None), (False, True, True)]]
    facts = json.dumps(venue_text.FACTS)
    got = run_module("facts.js", f"{json.dumps(cases)}.map(p => [m.agesText(p, t, facts), "
                                 f"m.accessFacts(p, t, facts)])".replace(
                                     "t, facts", f"{json.dumps(t)}, {facts}"))
    expected = [[venue_text.ages_text(p, t), [list(f) for f in venue_text.access_facts(p, t)]]
                for p in cases]
    assert got == expected
    said = {g[0] for g in got}
    assert t["ven_all_ages"] in said and None in said and len(said) > 10
