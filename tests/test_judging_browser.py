"""Judging in a real headless Chromium: a juror's judging page on a tablet (signed in,
scored with the keyboard, progress), the exhibition slideshow on a lobby screen (keys,
auto-advance, a song only on request) and the published results on phones (320 and 360 px,
both languages); axe audits and screenshots (test-output/screenshots/). SpatiaLite (the
queries are tested on both backends in test_judging.py)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axe import audit
from helpers import speech

pytest.importorskip("playwright.sync_api")
from test_map_browser import SHOTS, serve  # noqa: E402
from test_works_browser import pages_of, png_file  # noqa: E402

from voicemap import audio, auth, create_app, db, judging  # noqa: E402
from voicemap import works as service  # noqa: E402
from voicemap.models import utcnow  # noqa: E402
from voicemap.storage import media_store  # noqa: E402

TABLET = {"width": 820, "height": 1180}
LOBBY = {"width": 1280, "height": 720}
PHONE = {"width": 360, "height": 740}
SMALL = {"width": 320, "height": 640}
LONG_TITLE = "我和爷爷在什刹海冰场上滑冰的那个下午，天空特别蓝，冰面亮得像一面大镜子"


def _work(s, cid, kind, title, name, age, story, upload=None, public="true", **more):
    form = {"kind": kind, "title": title, "narrator_name": name, "narrator_age": str(age),
            "story": story, "consent_by": "Guardian", "guardian_contact": "g@example.com",
            "consent_judging": "true", "consent_public": public, **more}
    work, _ = service.submit(s, media_store(), cid, form, upload,
                             audio_limits=audio.Limits(), status="approved")
    return work.id


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("judging-browser")
    app = create_app({"DATABASE_URL": f"sqlite:///{base / 'vm.sqlite'}",
                      "MEDIA_DIR": str(base / "media"), "SECRET_KEY": "browser-test"})
    db.init_schema(app.extensions["voicemap.engine"])
    now = utcnow()
    with app.app_context():
        s = db.get_session()
        for cid in ("judging-now", "me-and-my-city"):
            service.create_campaign(s, cid, title_zh="我和我的城市", title_en="Me and my city",
                                    opens=now - timedelta(days=1),
                                    closes=now + timedelta(days=30), status="open")
        ids = {}
        for cid in ("judging-now", "me-and-my-city"):
            ids[cid] = [
                _work(s, cid, "painting", "The sun over the park", "Lily", 8,
                      "A big orange sun.\nBirds sing.", png_file(base),
                      lat="39.9" if cid == "me-and-my-city" else "39.905", lon="116.385"),
                _work(s, cid, "writing", LONG_TITLE, "Tom", 11,
                      "Grandpa held my hand on the ice.\nThe sky was very blue."),
                _work(s, cid, "song", "Song of the hutong", "Mei", 9,
                      "A song about the hutong where I live.",
                      speech(base / cid, "song.mp3")),
            ]
        hidden = _work(s, "me-and-my-city", "writing", "Hidden winner", "Secret", 12,
                       "Not for the public.", public="false")
        service.set_status(s, "judging-now", "judging")
        service.set_status(s, "me-and-my-city", "judging")
        for wid, award in zip(ids["me-and-my-city"], ("gold", "silver", "merit"), strict=True):
            judging.award(s, "me-and-my-city", wid, award)
        judging.award(s, "me-and-my-city", hidden, "bronze")
        judging.publish(s, "me-and-my-city")
        token = auth.create_manager(s, "Juror One", juror_campaign="judging-now")[1]
        admin = auth.create_manager(s, "Admin", admin=True)[1]
    url, server = serve(app)
    yield url, token, ids, admin
    server.shutdown()
    app.extensions["voicemap.engine"].dispose()


@pytest.fixture
def open_page(browser, site):
    with pages_of(browser, site[0]) as open_:
        yield open_


def shot(page, name: str, full: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def axe(browser, page, wait: str = "body") -> list[str]:
    """axe's violations on the page as it loads, in a second context that lets axe's
    script in (the pages' CSP allows no inline script; the first context keeps checking
    the CSP) and carries the same cookies."""
    ctx = browser.new_context(bypass_csp=True, viewport=page.viewport_size,
                              storage_state=page.context.storage_state())
    try:
        other = ctx.new_page()
        other.goto(page.url)
        other.wait_for_selector(wait)
        return audit(other)
    finally:
        ctx.close()


def no_sideways_scroll(page) -> bool:
    """Compared with the screen's width, not window.innerWidth: a phone zooms out to show a
    page wider than the screen, which widens innerWidth with it."""
    return page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_a_juror_scores_on_a_tablet_with_the_keyboard(browser, open_page, site):
    _, token, ids, _ = site
    page = open_page("/manage/", TABLET)
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_selector(".judge-form")
    assert "0 of 3 scored" in page.text_content("#judge-progress")
    assert no_sideways_scroll(page)
    first = page.get_attribute(".judge-work", "data-work")
    assert first in ids["judging-now"]
    body = page.text_content("body")
    assert "Lily" not in body and "Guardian" not in body  # blind
    shot(page, "judging-tablet-start")
    problems = axe(browser, page, ".judge-form")
    assert not problems, problems
    page.keyboard.press("8")
    page.keyboard.press("7")
    page.keyboard.press("T")
    assert page.is_checked("input[name=creativity][value='8']")
    assert page.is_checked("input[name=expression][value='7']")
    assert page.is_checked("input[name=city][value='10']")
    shot(page, "judging-tablet-scored")
    page.keyboard.press("Enter")
    page.wait_for_selector("#judge-progress:has-text('1 of 3 scored')")
    assert page.get_attribute(".judge-work", "data-work") != first
    # arrow left goes back to the work just scored, its scores shown
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector(f".judge-work[data-work='{first}']")
    assert page.is_checked("input[name=city][value='10']")
    shot(page, "judging-tablet-back")


def test_the_judging_page_on_a_landscape_tablet(open_page, site):
    page = open_page("/manage/", {"width": 1180, "height": 820})
    page.fill("input[name=token]", site[1])
    page.click("button[type=submit]")
    page.wait_for_selector(".judge-form")
    work, form = (page.locator(s).bounding_box() for s in (".judge-work", ".judge-form"))
    assert form["x"] > work["x"] + work["width"] - 1  # side by side
    assert no_sideways_scroll(page)
    shot(page, "judging-tablet-landscape", full=False)


def test_the_exhibition_slideshow(browser, open_page, site):
    page = open_page("/campaigns/me-and-my-city/exhibition?lang=zh&interval=5", LOBBY,
                     locale="zh-CN", mobile=False)
    page.wait_for_selector("#vm-exhibition[data-ready='1']")
    visible = page.locator(".vm-slide:not([hidden])")
    assert visible.count() == 1
    assert "金奖 · Gold award" in visible.text_content()
    assert "by Lily, age 8" in visible.text_content()
    assert page.evaluate("document.querySelector('.vm-slide:not([hidden]) img').naturalWidth") > 0
    shot(page, "exhibition-lobby-1", full=False)
    page.keyboard.press("ArrowRight")
    assert page.text_content("#vm-ex-count") == "2 / 3"
    assert LONG_TITLE in page.locator(".vm-slide:not([hidden])").text_content()
    shot(page, "exhibition-lobby-2-writing", full=False)
    # auto-advance after the interval (5 s)
    page.wait_for_selector("#vm-ex-count:text-is('3 / 3')", timeout=9000)
    # the song: silent until asked; playing holds the slideshow
    assert page.evaluate("document.getElementById('vm-ex-audio').paused")
    assert page.evaluate("[...document.querySelectorAll('audio')].every(a => !a.autoplay)")
    page.click(".vm-slide:not([hidden]) .vm-play")
    page.wait_for_selector(".vm-slide:not([hidden]) .vm-play[aria-pressed='true']")
    assert not page.evaluate("document.getElementById('vm-ex-audio').paused")
    shot(page, "exhibition-lobby-3-song", full=False)
    page.evaluate("document.activeElement.blur()")  # Space on a focused button presses it
    page.keyboard.press("Space")
    assert page.get_attribute("#vm-ex-pause", "aria-pressed") == "true"
    page.keyboard.press("ArrowRight")  # moving on stops the song
    assert page.text_content("#vm-ex-count") == "1 / 3"
    assert page.evaluate("document.getElementById('vm-ex-audio').paused")
    problems = axe(browser, page, "#vm-exhibition[data-ready='1']")
    assert not problems, problems


@pytest.mark.parametrize("viewport,lang", [(SMALL, "zh"), (SMALL, "en"), (PHONE, "en")])
def test_the_results_page_on_phones(browser, open_page, site, viewport, lang):
    page = open_page(f"/campaigns/me-and-my-city/results?lang={lang}", viewport)
    assert page.locator(".vm-winner").count() == 4
    hidden = page.text_content(".vm-winner-hidden")
    assert ("not shown at the family's request" in hidden if lang == "en"
            else "应家长要求" in hidden)
    assert "Hidden winner" not in page.content() and "Secret" not in page.content()
    assert no_sideways_scroll(page)
    shot(page, f"judging-results-{viewport['width']}-{lang}")
    problems = axe(browser, page)
    assert not problems, problems


def test_award_winners_are_marked_on_the_map(open_page, site):
    gold = site[2]["me-and-my-city"][0]
    page = open_page("/?lang=en&lat=39.902&lon=116.385&z=15")
    page.wait_for_selector(".vm-work-marker.vm-work-gold")
    # one medal: the other campaign's painting has no published award
    assert page.locator(".vm-work-marker .vm-medal").count() == 1
    page.click(".vm-work-marker.vm-work-gold")
    page.wait_for_selector(f".vm-work-pop[data-work='{gold}']")
    assert "Gold award" in page.text_content(".vm-work-pop")
    shot(page, "judging-map-award-360-en")


def only_language(page, lang: str) -> None:
    """The page's own words (headings, labels, buttons, summaries, statuses, table headers,
    the progress and the messages) are in the page's language only (the works' titles,
    stories and ids and the managers' names are data; key caps are key caps)."""
    assert page.evaluate("document.documentElement.lang") == ("zh-CN" if lang == "zh"
                                                              else "en")
    words = page.locator("label, legend, button, summary, .status, th, caption, option, "
                         "#judge-progress, .muted:not(.judge-work .muted), .flash, dd")
    said = " ".join(words.all_inner_texts())
    said += " ".join(page.eval_on_selector_all("[aria-label]", "els => els.map("
                                               "e => e.getAttribute('aria-label'))"))
    if lang == "en":
        assert not re.search(r"[\u3000-\u303f\u4e00-\u9fff\uff01-\uff5e]", said), said
    else:
        said = said.replace("Admin", "").replace("Juror One", "")
        for work_id in page.eval_on_selector_all("tr[id^='result-']",
                                                 "els => els.map(e => e.id.slice(7))"):
            said = said.replace(work_id, "")
        assert not re.search(r"\b(?!CSV\b)[A-Za-z]{3,}", said), said


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_judging_pages_in_manage_in_each_language(browser, open_page, site, lang):
    """The juror's page on a tablet and the results table on a phone, in one language
    each, with no sideways scroll, and axe's audit passes."""
    url, token, _, admin = site
    locale = "zh-CN" if lang == "zh" else "en-US"
    page = open_page(f"/manage/?lang={lang}", TABLET, locale=locale)
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_selector(".judge-form")
    page.click(".judge-keys summary")  # the shortcuts' words are checked too
    only_language(page, lang)
    assert ("与城市的联系" if lang == "zh" else "Connection to the city") in page.text_content(
        ".judge-form")
    assert no_sideways_scroll(page)
    shot(page, f"judging-tablet-{lang}")
    problems = axe(browser, page, ".judge-form")
    assert not problems, problems
    for width in (SMALL, PHONE):
        page = open_page(f"/manage/?lang={lang}", width, locale=locale)
        page.fill("input[name=token]", admin)
        page.click("button[type=submit]")
        page.wait_for_selector(".bar .who")
        page.goto(f"{url}/manage/campaigns/me-and-my-city/results")
        page.wait_for_selector(".results-table")
        only_language(page, lang)
        assert ("金奖" if lang == "zh" else "Gold award") in page.text_content(
            ".results-table")
        assert no_sideways_scroll(page)
        shot(page, f"judging-results-manage-{width['width']}-{lang}")
        problems = axe(browser, page, ".results-table")
        assert not problems, problems
