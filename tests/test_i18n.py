"""The gettext catalogues (web/translations): complete in both languages, placeholders that
agree, plural forms chosen by count on the server and exported by CLDR category to the map."""

from __future__ import annotations

import json
import re
import shutil

import flask_babel
import pytest
from flask import render_template_string

from voicemap import categories, create_app, i18n
from voicemap.http import pages


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("i18n")
    return create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{root / 'vm.db'}",
                       "MEDIA_DIR": str(root / "media")})


def test_the_catalogues_pass_babels_checks_and_agree_with_each_other():
    assert i18n.check_catalogues() == []
    assert i18n.catalog("zh").num_plurals == 1
    assert i18n.catalog("en").num_plurals == 2
    assert i18n.catalog("en").plural_forms == "nplurals=2; plural=(n != 1);"
    assert i18n.strings("zh").keys() == i18n.strings("en").keys()
    assert i18n.plural_keys("zh") == i18n.plural_keys("en")
    assert {"voice_count", "voiced_count", "cluster_label", "info_results",
            "mg_review_n"} <= i18n.plural_keys("en")


def damaged(tmp_path, lang: str, old: str, new: str):
    copy = tmp_path / f"translations-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(i18n.TRANSLATIONS_DIR, copy)
    po = copy / lang / "LC_MESSAGES" / "messages.po"
    text = po.read_text(encoding="utf-8")
    assert old in text
    po.write_text(text.replace(old, new, 1), encoding="utf-8")
    return i18n.check_catalogues(copy)


def test_the_check_finds_a_missing_key(tmp_path):
    problems = damaged(tmp_path, "zh", 'msgid "near_me"\n', 'msgid "near_me_gone"\n')
    assert "zh: 'near_me' is missing" in problems
    assert "zh: 'near_me_gone' is not in en" in problems


def test_the_check_finds_a_placeholder_that_differs_or_is_broken(tmp_path):
    problems = damaged(tmp_path, "zh", "讲解：%(name)s", "讲解：%(nom)s")
    assert any(p.startswith("zh 'narrator':") for p in problems), problems
    problems = damaged(tmp_path, "en", '"%(n)s voice guides"', '"%(n voice guides"')
    assert any(p.startswith("en 'voice_count':") for p in problems), problems


def test_the_check_finds_plural_forms_that_do_not_match_the_header(tmp_path):
    problems = damaged(tmp_path, "en", 'msgstr[1] "%(n)s voice guides"\n', "")
    assert any("voice_count" in p for p in problems), problems


def test_counts_take_their_plural_form_in_english_and_chinese():
    assert i18n.ngettext("en", "voice_count", 1) == "1 voice guide"
    assert i18n.ngettext("en", "voice_count", 2) == "2 voice guides"
    assert i18n.ngettext("en", "voice_count", 0) == "0 voice guides"
    assert i18n.ngettext("zh", "voice_count", 1) == "1 段语音导览"
    assert i18n.ngettext("zh", "voice_count", 2) == "2 段语音导览"
    assert i18n.ngettext("en", "plays_summary", 1, days=7) == "1 play in the last 7 days"


def test_templates_render_plural_forms_through_the_catalogue_and_flask_babel(app):
    template = ("{{ t.ngettext('voice_count', n) }}|"
                "{{ ngettext('voice_count', 'voice_count', n, n=n) }}|"
                "{{ gettext('narrator', name='<b>', age=7) }}")
    seen = {}
    for lang in ("en", "zh"):
        for n in (1, 2):
            with app.test_request_context(f"/?lang={lang}"):
                seen[lang, n] = render_template_string(template, t=i18n.strings(lang), n=n)
                assert str(flask_babel.get_locale()) == lang
    assert seen["en", 1] == "1 voice guide|1 voice guide|Told by &lt;b&gt;, age 7"
    assert seen["en", 2] == "2 voice guides|2 voice guides|Told by &lt;b&gt;, age 7"
    assert seen["zh", 1] == "1 段语音导览|1 段语音导览|讲解：&lt;b&gt;，7 岁"
    assert seen["zh", 2] == "2 段语音导览|2 段语音导览|讲解：&lt;b&gt;，7 岁"


def test_the_venue_summary_says_one_voice_guide_or_two(app):
    en, zh = i18n.strings("en"), i18n.strings("zh")
    p = {"address_en": "1 Main St", "address_zh": "一号"}
    with app.test_request_context("/"):
        assert pages.venue_summary(p, "Museums", 1, en, "en") == (
            "Museums · 1 Main St · 1 voice guide")
        assert pages.venue_summary(p, "Museums", 2, en, "en") == (
            "Museums · 1 Main St · 2 voice guides")
        assert pages.venue_summary(p, "博物馆", 2, zh, "zh") == "博物馆 · 一号 · 2 段语音导览"


def test_manage_counts_in_the_page_language(app):
    client = app.test_client()
    with app.test_request_context("/manage/?lang=en"):
        from voicemap.http import manage

        assert manage.trn("mg_clips_n", 1) == "1 clip"
        assert manage.trn("mg_clips_n", 3) == "3 clips"
        assert manage.tr("mg_act_added", id="a1") == "Activity a1 added."
    # /manage's sign-in page is in the language asked for, and remembers it
    assert "lang=\"en\"" in client.get("/manage/?lang=en").get_data(as_text=True)


def test_category_labels_come_from_the_catalogues():
    for cat in categories.CATEGORIES:
        assert cat.label("zh") == i18n.strings("zh")[f"cat_{cat.id}"]
        assert cat.label("en") == i18n.strings("en")[f"cat_{cat.id}"]
    assert categories.get("park").to_dict() == {
        "id": "park", "zh": "公园", "en": "Parks", "colour": "#2e6b30", "icon": "🌳"}


def test_the_map_page_exports_plurals_by_cldr_category(app):
    client = app.test_client()
    for lang, want in (("en", {"one": "%(n)s voice guide", "other": "%(n)s voice guides"}),
                       ("zh", {"other": "%(n)s 段语音导览"})):
        html = client.get(f"/?lang={lang}").get_data(as_text=True)
        found = re.search(r'"voice_count": (\{[^}]*\})', html)
        assert found, lang
        assert json.loads(found.group(1)) == want
        assert f'"near_me": {json.dumps(i18n.strings(lang)["near_me"], ensure_ascii=False)}' \
            in html
        assert '"mg_' not in html  # /manage's messages stay on the server
    assert i18n.js_catalogue("en")["play_guide"] == "Play the voice guide for %(name)s"
