"""Children's works in a real headless Chromium: the submission page on phones (360 x 740
and 320 px) sent to its receipt, the gallery and a work's page, and the map's works layer.
Screenshots go to test-output/screenshots/. SpatiaLite (the pages do not depend on the
backend; their queries are tested on both in test_works.py)."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import feature, load

pytest.importorskip("playwright.sync_api")
from test_map_browser import SHOTS, TILE, serve  # noqa: E402

from voicemap import create_app, db  # noqa: E402
from voicemap import works as service  # noqa: E402
from voicemap.models import utcnow  # noqa: E402

PHONE = {"width": 360, "height": 740}
SMALL = {"width": 320, "height": 640}


def png_file(directory: Path) -> Path:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (800, 600), (135, 196, 235))
    ImageDraw.Draw(img).ellipse((250, 150, 550, 450), fill=(230, 80, 40))
    path = directory / "drawing.png"
    img.save(path)
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("works-browser")
    app = create_app({"DATABASE_URL": f"sqlite:///{base / 'vm.sqlite'}",
                      "MEDIA_DIR": str(base / "media"), "SECRET_KEY": "browser-test",
                      "RATELIMIT_SUBMIT": "100/hour"})
    db.init_schema(app.extensions["voicemap.engine"])
    load(app, [feature("park-0", 116.385, 39.90, "park", name_en="Example Park")])
    with app.app_context():
        s = db.get_session()
        service.create_campaign(s, "me-and-my-city", title_zh="我和我的城市",
                                title_en="Me and my city", opens=utcnow() - timedelta(days=1),
                                closes=utcnow() + timedelta(days=30), status="open")
        from voicemap import audio
        from voicemap.storage import media_store

        work, _ = service.submit(
            s, media_store(), "me-and-my-city",
            {"kind": "painting", "title": "The sun over the park", "narrator_name": "Lily",
             "narrator_age": "8", "story": "A big orange sun.\nBirds sing.",
             "consent_by": "Mei Wang", "guardian_contact": "mei@example.com",
             "consent_judging": "true", "consent_public": "true", "venue_id": "park-0"},
            png_file(base), audio_limits=audio.Limits(), status="approved")
        work_id = work.id
    url, server = serve(app)
    yield url, work_id, base
    server.shutdown()
    app.extensions["voicemap.engine"].dispose()


@contextmanager
def pages_of(browser, url: str):
    """``open_(path, viewport, locale, mobile)`` opens a page of the site at ``url`` in a
    context of its own (tiles stubbed, any other host refused); on leaving, every page must
    have had no script error, no foreign request and no CSP violation."""
    made = []

    def open_(path: str, viewport=PHONE, locale="en-US", mobile=True):
        ctx = browser.new_context(viewport=viewport, device_scale_factor=1, locale=locale,
                                  is_mobile=mobile, has_touch=mobile)
        page = ctx.new_page()
        problems: list[str] = []
        ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(url)
                  else r.fulfill(body=TILE, content_type="image/png")
                  if "tile.openstreetmap.org" in r.request.url
                  else (problems.append(r.request.url), r.abort()))
        ctx.add_init_script("window.__csp = []; document.addEventListener("
                            "'securitypolicyviolation', e => window.__csp.push("
                            "e.violatedDirective + ' ' + e.blockedURI));")
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(url + path)
        made.append((ctx, page, problems))
        return page

    yield open_
    for ctx, page, problems in made:
        violations = page.evaluate("window.__csp || []") if not page.is_closed() else []
        ctx.close()
        assert problems == []
        assert violations == []


@pytest.fixture
def open_page(browser, site):
    with pages_of(browser, site[0]) as open_:
        yield open_


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("viewport,lang", [(PHONE, "zh"), (SMALL, "en")])
def test_the_submission_page_is_sent_to_a_receipt_on_a_phone(open_page, site, viewport,
                                                              lang):
    base = site[2]
    page = open_page(f"/campaigns/me-and-my-city/submit?lang={lang}", viewport)
    assert no_sideways_scroll(page)
    w = viewport["width"]
    shot(page, f"works-submit-{w}-{lang}")
    page.check("input[name=kind][value=painting]")
    assert page.is_visible("#f-image")
    assert not page.is_visible("#f-audio")
    page.fill("#f-title", "My street")
    page.set_input_files("#f-image", str(png_file(base)))
    page.wait_for_selector("#f-image-preview:not([hidden])")
    page.fill("#f-story", "Our street has a red door.\nThe cat sleeps there.")
    page.fill("#f-name", "Tom")
    page.select_option("#f-age", "9")
    page.fill("#f-consent-by", "Anna Li")
    page.fill("#f-contact", "+86 138 0013 8000")
    page.check("input[name=consent_judging]")
    page.check("input[name=consent_public]")
    page.keyboard.press("Tab")
    page.click(".vm-send")
    page.wait_for_selector("#vm-withdraw-code")
    code = page.text_content("#vm-withdraw-code")
    assert len(code.replace("-", "")) == 16
    assert no_sideways_scroll(page)
    shot(page, f"works-receipt-{w}-{lang}")


def test_a_song_can_be_chosen_as_a_file_or_recorded(open_page):
    page = open_page("/campaigns/me-and-my-city/submit?lang=en")
    page.check("input[name=kind][value=song]")
    assert page.is_visible("#f-audio")
    assert not page.is_visible("#f-image")
    assert page.is_visible("#f-record")  # MediaRecorder exists in Chromium
    shot(page, "works-submit-song-360-en")


def test_gallery_and_work_page_on_a_phone(open_page, site):
    work_id = site[1]
    page = open_page("/works?lang=en")
    assert page.is_visible(f"[data-work='{work_id}'] img")
    assert no_sideways_scroll(page)
    shot(page, "works-gallery-360-en")
    page = open_page(f"/works/{work_id}?lang=zh", SMALL)
    alt = page.get_attribute(".vm-work-image img", "alt")
    assert alt.startswith("A big orange sun.")
    assert page.evaluate("document.querySelector('.vm-work-image img').naturalWidth") > 0
    assert no_sideways_scroll(page)
    shot(page, "works-page-320-zh")


def test_the_map_has_a_childrens_works_layer(open_page, site):
    work_id = site[1]
    page = open_page("/?lang=en&lat=39.9&lon=116.385&z=15")
    page.wait_for_selector(".vm-work-marker")
    page.click(".vm-work-marker")
    page.wait_for_selector(f".vm-work-pop[data-work='{work_id}']")
    assert "The sun over the park" in page.text_content(".vm-work-pop")
    assert "Lily" in page.text_content(".vm-work-pop")
    shot(page, "works-map-popup-360-en")
