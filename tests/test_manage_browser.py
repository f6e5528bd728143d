"""/manage in a real headless Chromium, in both languages on phones (320 x 568, 360 x 640):
sign-in, an administrator's venue list, a manager's venue page (the longest real venue name,
a rejected clip with its reason), the review queue, the delete confirmation and the edit page.
Each is audited with axe-core, checked for sideways scrolling and for touch targets under
44 px; the upload form keeps what was typed when refused, and a fresh upload is shown at the
top. Screenshots go to test-output/screenshots/. SpatiaLite (the pages do not depend on the
backend; test_manage.py runs the same views on both)."""

from __future__ import annotations

import json
import re

import pytest
from helpers import ROOT_DATA, load, speech

pytest.importorskip("playwright.sync_api")
from axe import audit  # noqa: E402
from test_map_browser import SHOTS, serve  # noqa: E402

from voicemap import audio, auth, clips, create_app, db  # noqa: E402
from voicemap.storage import media_store  # noqa: E402

PHONES = [{"width": 320, "height": 568}, {"width": 360, "height": 640}]
LONG_EN = "anti-japanese-war-memorial-museum"  # the longest English name
LONG_ZH = "grand-canal-museum-of-beijing"  # the longest Chinese name


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("manage-browser")
    app = create_app({"DATABASE_URL": f"sqlite:///{base / 'vm.sqlite'}",
                      "MEDIA_DIR": str(base / "media"), "SECRET_KEY": "browser-test",
                      "RATELIMIT_UPLOAD": "1000/hour", "RATELIMIT_AUTH": "1000/minute"})
    db.init_schema(app.extensions["voicemap.engine"])
    load(app, json.loads(ROOT_DATA.read_text(encoding="utf-8"))["features"])
    src = speech(base, "guide.wav")
    with app.app_context():
        s = db.get_session()
        _, admin = auth.create_manager(s, "Administrator", admin=True)
        _, manager = auth.create_manager(s, "Wang Fang", [LONG_EN, LONG_ZH])
        s.commit()
        made = []
        for title in ("The hall of the great bronze bells and drums", "Welcome", "Waiting"):
            fields = clips.check_fields({
                "lang": "en", "narrator_name": "Lily", "narrator_age": "9", "title": title,
                "transcript": "Welcome to the museum. " * 8, "consent": "true",
                "consent_by": "Her mother"})
            made.append(clips.attach(db.get_session(), media_store(), LONG_EN, src, fields,
                                     manager=None, limits=audio.Limits()).id)
        clips.review(db.get_session(), made[0], None, publish=False,
                     reason="Please say the museum's full name at the start, and speak a "
                            "little more slowly near the end of the recording.")
        clips.review(db.get_session(), made[1], None, publish=True)
    url, server = serve(app)
    yield {"url": url, "admin": admin, "manager": manager, "clips": made, "base": base}
    server.shutdown()
    app.extensions["voicemap.engine"].dispose()


@pytest.fixture
def open_as(browser, site):
    made = []

    def open_(who: str | None, lang: str, viewport):
        ctx = browser.new_context(viewport=viewport, device_scale_factor=1,
                                  locale="zh-CN" if lang == "zh" else "en-US",
                                  is_mobile=True, has_touch=True,
                                  bypass_csp=True)  # axe is injected as an inline script
        page = ctx.new_page()
        problems: list[str] = []
        ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(site["url"])
                  else (problems.append(r.request.url), r.abort()))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error"
                and "status of 422" not in m.text else None)  # a refused upload is tested
        page.goto(f"{site['url']}/manage/?lang={lang}")
        if who:
            page.fill("#token", site[who])
            page.click("button[type=submit]")
            page.wait_for_selector("h1")
        made.append((ctx, problems))
        return page

    yield open_
    for ctx, problems in made:
        ctx.close()
        assert problems == []


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def small_targets(page) -> list[str]:
    """Visible links, buttons, form controls and summaries smaller than 44 px tall (and, but
    for text fields, wide)."""
    return page.evaluate("""() => {
      const out = [];
      for (const el of document.querySelectorAll(
          'a[href], button, input:not([type=hidden]), select, textarea, summary')) {
        const r = el.getBoundingClientRect();
        if (!r.width && !r.height) continue;  // not shown
        if (el.closest('[hidden]')) continue;
        const text = ['text', 'password', 'search', 'number', 'file'].includes(el.type)
                     || el.tagName === 'SELECT' || el.tagName === 'TEXTAREA';
        if (r.height < 44 || (!text && r.width < 44))
          out.push(`${el.tagName.toLowerCase()} "${(el.textContent || el.name || '').trim()
                     .slice(0, 30)}" ${Math.round(r.width)}x${Math.round(r.height)}`);
      }
      return out;
    }""")


def check(page, name: str) -> None:
    """No axe violations, no sideways scroll, no small targets; a screenshot."""
    shot(page, name)
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], (name, width)
    assert small_targets(page) == [], name
    assert audit(page) == [], name


def only_language(page, lang: str) -> None:
    """The page's own words are in one language (the switch link names the other, and the
    data, such as venue and clip names, is what it is)."""
    html_lang = page.evaluate("document.documentElement.lang")
    assert html_lang == ("zh-CN" if lang == "zh" else "en")
    words = page.locator("label, legend, button, h2:not(.clip-title), summary, .status")
    labels = " ".join(words.all_inner_texts())
    if lang == "en":
        assert not re.search(r"[\u4e00-\u9fff]", labels), labels
    else:
        names = r"(?!LUFS|dBTP|MP3|M4A|WAV|AMR|Ogg|WebM|FLAC|PNG|SVG|MB)"
        assert not re.search(rf"\b{names}[A-Za-z]{{3,}}", labels), labels


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("viewport", PHONES, ids=["320", "360"])
def test_manage_pages_pass_axe_and_fit_phones(open_as, site, lang, viewport):
    tag = f"manage-{lang}-{viewport['width']}"
    page = open_as(None, lang, viewport)
    only_language(page, lang)
    check(page, f"{tag}-signin")

    page = open_as("admin", lang, viewport)
    only_language(page, lang)
    check(page, f"{tag}-index-admin")
    page.fill("#q", "museum" if lang == "en" else "博物馆")
    page.click("form[role=search] button")
    page.wait_for_load_state()
    assert page.locator(".venues li a").count() >= 1
    check(page, f"{tag}-index-search")

    page.goto(f"{site['url']}/manage/review")
    only_language(page, lang)
    check(page, f"{tag}-review")

    page = open_as("manager", lang, viewport)
    assert page.locator(".venues li").count() == 2
    page.goto(f"{site['url']}/manage/venues/{LONG_EN}")
    only_language(page, lang)
    reason = page.locator(f"#clip-{site['clips'][0]} .flash.error")
    assert "full name at the start" in reason.inner_text()
    check(page, f"{tag}-venue")
    page.goto(f"{site['url']}/manage/venues/{LONG_ZH}")
    check(page, f"{tag}-venue-zh-name")

    page.goto(f"{site['url']}/manage/clips/{site['clips'][0]}/edit")
    check(page, f"{tag}-edit")
    page.goto(f"{site['url']}/manage/clips/{site['clips'][0]}/delete")
    assert "The hall of the great bronze bells and drums" in page.locator(".confirm-q").inner_text()
    check(page, f"{tag}-delete")


def test_upload_keeps_typed_fields_then_shows_the_new_clip_first(open_as, site):
    page = open_as("manager", "en", PHONES[1])
    page.goto(f"{site['url']}/manage/venues/{LONG_EN}")
    junk = site["base"] / "notes.mp3"
    junk.write_bytes(b"not a recording " * 300)
    page.set_input_files("#file", str(junk))
    page.fill("#narrator_name", "Lily")
    page.fill("#narrator_age", "9")
    page.select_option("#lang", "en")
    page.fill("#title", "Dragon gate")
    page.fill("#transcript", "The dragon gate is very old.")
    page.fill("#consent_by", "Her father")
    page.check("input[name=consent]")
    page.click("#submit")
    page.wait_for_selector("#upload-error")
    assert "not a supported audio recording" in page.inner_text("#upload-error")
    assert [page.input_value(s) for s in ("#narrator_name", "#narrator_age", "#title",
                                          "#transcript", "#consent_by")] == [
        "Lily", "9", "Dragon gate", "The dragon gate is very old.", "Her father"]
    assert page.is_checked("input[name=consent]")
    assert page.evaluate("document.getElementById('file').files.length") == 0
    check(page, "manage-en-360-upload-refused")

    page.set_input_files("#file", str(speech(site["base"], "dragon.m4a")))
    page.click("#submit")
    page.wait_for_selector(".fresh")
    fresh = page.locator(".fresh")
    assert "Dragon gate" in fresh.inner_text() and "LUFS" in fresh.inner_text()
    assert fresh.bounding_box()["y"] < page.locator("#upload").bounding_box()["y"]
    # visible without scrolling, under the bar, title and buttons
    assert page.locator(".fresh .clip-title").bounding_box()["y"] < 640
    check(page, "manage-en-360-uploaded")

    # Deleting it: the link leads to a confirmation naming it, Cancel keeps it.
    clip_id = fresh.locator("article").get_attribute("id")[5:]
    page.goto(f"{site['url']}/manage/venues/{LONG_EN}")
    page.click(f"a[href='/manage/clips/{clip_id}/delete']")
    assert "Dragon gate" in page.inner_text(".confirm-q")
    page.click("text=Cancel, keep the clip")
    assert page.locator(f"#clip-{clip_id}").count() == 1
    page.click(f"a[href='/manage/clips/{clip_id}/delete']")
    page.click("form.danger button")
    assert "“Dragon gate” was deleted everywhere." in page.inner_text(".flash.ok")
    assert page.locator(f"#clip-{clip_id}").count() == 0
