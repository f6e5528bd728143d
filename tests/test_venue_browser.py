"""Families on a phone, in a real headless Chromium: the real registry's longest names, both
languages, 320x568 and 360x640. Clips in the page's language first, players showing the
stored duration without downloading, "go there" and share, the map's search box, and an
axe-core audit of the venue page.

The app, the browser context and the request guard are test_map_browser's (``visit``).
"""

from __future__ import annotations

import json
import re

import pytest
from axe import audit
from helpers import ROOT_DATA, load, published_clip
from test_map_browser import make_site, visit  # noqa: F401 - the fixture

from voicemap import create_app, db, i18n, venue_text

SMALL = {"width": 320, "height": 568}
PHONE = {"width": 360, "height": 640}
SIZES = [("320", SMALL), ("360", PHONE)]
LANGS = ["zh", "en"]
PALACE = "palace-museum"


def real_features() -> list[dict]:
    return json.loads(ROOT_DATA.read_text(encoding="utf-8"))["features"]


def longest(lang: str) -> str:
    """The id of the venue with the longest name in ``lang`` (the registry's real data)."""
    return max(real_features(), key=lambda f: len(f["properties"][f"name_{lang}"]))[
        "properties"]["id"]


@pytest.fixture(scope="session")
def real_site(tmp_path_factory):
    """The real registry on SpatiaLite; the Palace Museum and both longest-named venues have
    a real spoken clip in each language (Chinese uploaded first, so newest-first is English)."""
    base = tmp_path_factory.mktemp("real")
    url = f"sqlite:///{base / 'voicemap.sqlite'}"
    app = create_app({"DATABASE_URL": url, "MEDIA_DIR": str(base / "media"),
                      "SECRET_KEY": "browser-test"})
    db.init_schema(app.extensions["voicemap.engine"])
    load(app, real_features())
    clips = {}
    for vid in dict.fromkeys([PALACE, longest("zh"), longest("en")]):
        clips[vid] = [published_clip(app, vid, lang, base / f"{vid}-{lang}")
                      for lang in ("zh", "en")]
    app.extensions["voicemap.engine"].dispose()
    site, server = make_site(url, base / "media")
    site.clip = clips
    yield site
    server.shutdown()
    site.app.extensions["voicemap.engine"].dispose()


def clock(ms: int) -> str:
    s = round(ms / 1000)
    return f"{s // 60}:{s % 60:02d}"


def fits(v) -> None:
    width = v.page.evaluate("document.documentElement.scrollWidth")
    inner = v.page.evaluate("window.innerWidth")
    assert width <= inner, f"{width}px wide on a {inner}px screen"


def small_targets(v, scope: str) -> list[str]:
    return v.page.evaluate("""(scope) => Array.from(document.querySelectorAll(
        scope + ' button, ' + scope + ' a.vm-btn, ' + scope + ' input[type=range]'))
        .filter(e => !e.closest('[hidden]') && e.getBoundingClientRect().width > 0)
        .filter(e => { const r = e.getBoundingClientRect(); return r.width < 44 || r.height < 44; })
        .map(e => e.outerHTML.slice(0, 90))""", scope)


def audio_requests(v) -> list[str]:
    return [u for u in v.requests if "/audio/" in u]


def open_page(visit, site, path, viewport):  # noqa: F811 - visit is the fixture
    v = visit(site, path, viewport=viewport, wait=False)
    v.requests = []
    v.page.on("request", lambda r: v.requests.append(r.url))
    v.page.goto(site.url + path)  # again, watched from the start (the map rewrites its URL)
    return v


# --- the venue page ----------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("size", "viewport"), SIZES)
def test_venue_page_on_a_phone_clips_players_go_there_share(real_site, visit, lang, size,  # noqa: F811
                                                            viewport):
    vid = longest(lang)
    v = open_page(visit, real_site, f"/venues/{vid}?lang={lang}", viewport)
    v.page.wait_for_selector(".vm-player")
    # Clips: the page's language first.
    langs = v.page.evaluate("Array.from(document.querySelectorAll('.vm-clip audio'))"
                            ".map(a => a.getAttribute('src'))")
    by_src = {c["audio_url"]: c for c in real_site.clip[vid]}
    assert [by_src[s]["lang"] for s in langs] == [lang, "en" if lang == "zh" else "zh"]
    # Players: the stored duration before anything is fetched, no audio downloaded.
    times = v.page.locator(".vm-player-time").all_inner_texts()
    assert times == [f"0:00 / {clock(by_src[s]['duration_ms'])}" for s in langs]
    assert "0:00 / 0:00" not in times
    assert audio_requests(v) == []
    # "Go there": Gaode and Baidu (Apple Maps only on Apple devices), share as "copy link"
    # (headless Chromium has no Web Share API), all big enough to tap.
    t = i18n.strings(lang)
    go = v.page.locator(".vm-go-links a.vm-go-app:visible")
    assert go.all_inner_texts() == [t["ven_amap"], t["ven_baidu"]]
    share = v.page.locator(".vm-go .vm-share")
    assert share.is_visible() and share.inner_text() == t["ven_copy_link"]
    assert small_targets(v, ".vm-venue") == []
    fits(v)
    v.shot(f"venue-{lang}-{size}")
    share.click()
    v.page.locator(".vm-go .vm-share-status").filter(has_text=t["ven_link_copied"]).wait_for()
    # A tap plays, and only then is the audio fetched.
    v.page.locator(".vm-player-btn").first.click()
    v.page.wait_for_function("() => !document.querySelector('.vm-clip audio').paused")
    assert audio_requests(v) and audio_requests(v)[0].endswith(langs[0])
    # the button follows the audio's "play" event, a task queued after paused turns false
    v.page.wait_for_function("label => document.querySelector('.vm-player-btn')"
                             ".getAttribute('aria-label') === label", arg=t["pause"],
                             timeout=5000)
    v.page.locator(".vm-player-btn").first.click()
    fits(v)


@pytest.mark.parametrize("lang", LANGS)
def test_venue_page_passes_an_axe_audit(real_site, visit, lang):  # noqa: F811
    v = visit(real_site, f"/venues/{PALACE}?lang={lang}", viewport=PHONE, wait=False)
    v.page.wait_for_selector(".vm-player")
    v.page.wait_for_selector(".vm-venue-map .leaflet-marker-icon")
    # The basemap's tiles are the tile server's images, not ours.
    found = audit(v.page, exclude=[".leaflet-tile-pane"])
    assert found == [], "\n".join(found)


# --- the map: popup and near me ------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("size", "viewport"), SIZES)
def test_popup_orders_clips_and_shows_durations_and_go_there(real_site, visit, lang, size,  # noqa: F811
                                                             viewport):
    v = open_page(visit, real_site, f"/?lang={lang}&venue={PALACE}", viewport)
    v.page.wait_for_selector(f".vm-popup[data-venue='{PALACE}'] .vm-player")
    v.page.wait_for_timeout(400)
    srcs = v.page.evaluate("Array.from(document.querySelectorAll('.vm-popup audio'))"
                           ".map(a => a.getAttribute('src'))")
    by_src = {c["audio_url"]: c for c in real_site.clip[PALACE]}
    assert [by_src[s]["lang"] for s in srcs] == [lang, "en" if lang == "zh" else "zh"]
    assert v.page.locator(".vm-popup .vm-player-time").all_inner_texts() == [
        f"0:00 / {clock(by_src[s]['duration_ms'])}" for s in srcs]
    assert audio_requests(v) == []
    links = v.page.evaluate("Array.from(document.querySelectorAll('.vm-popup a.vm-go-app'))"
                            ".map(a => a.href)")
    venue = real_site.api(f"/api/venues/{PALACE}")
    lon, lat = venue["geometry"]["coordinates"]
    p = venue["properties"]
    expected = venue_text.map_app_links(p[f"name_{lang}"], lon, lat, p[f"address_{lang}"])
    assert links[:2] == [expected["amap"], expected["baidu"]]
    t = i18n.strings(lang)
    assert v.page.locator(".vm-popup .vm-share").inner_text() == t["ven_copy_link"]
    # From age 0 with no upper bound: "all ages", in the page's language.
    assert p["min_age"] == 0 and p.get("max_age") is None
    text = v.page.locator(".vm-popup .vm-facts").inner_text()
    assert t["ven_all_ages"] in text and "0 岁" not in text and "0 years" not in text
    fits(v)
    v.shot(f"popup-go-{lang}-{size}")


@pytest.mark.parametrize("lang", LANGS)
def test_near_me_play_button_plays_the_pages_language(real_site, visit, lang):  # noqa: F811
    lon, lat = real_site.api(f"/api/venues/{PALACE}")["geometry"]["coordinates"]
    v = visit(real_site, f"/?lang={lang}", viewport=PHONE,
              geolocation={"latitude": lat, "longitude": lon})
    v.page.click("#vm-near-btn")
    item = v.page.locator(f"#vm-near-list li[data-id='{PALACE}']")
    item.locator(".vm-play:not([disabled])").wait_for()
    src = item.locator("audio").get_attribute("src")
    first = [c for c in real_site.clip[PALACE] if c["lang"] == lang][0]
    assert src == first["audio_url"]


# --- the map's search box -------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("size", "viewport"), SIZES)
def test_search_box_finds_by_pinyin_with_the_keyboard(real_site, visit, lang, size,  # noqa: F811
                                                      viewport):
    v = visit(real_site, f"/?lang={lang}", viewport=viewport)
    t = i18n.strings(lang)
    btn = v.page.locator("#vm-search-btn")
    box = btn.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44
    fits(v)
    btn.click()
    field = v.page.locator("#vm-search-input")
    assert v.page.evaluate("document.activeElement.id") == "vm-search-input"
    assert field.get_attribute("role") == "combobox"
    assert field.get_attribute("aria-expanded") == "false"
    assert v.page.get_by_label(t["ven_search_label"], exact=True).first.count() == 1
    field.type("gugong")
    options = v.page.locator("#vm-search-list [role=option]")
    options.first.wait_for()
    assert field.get_attribute("aria-expanded") == "true"
    assert v.page.locator("#vm-search-list").get_attribute("role") == "listbox"
    assert options.first.get_attribute("data-id") == PALACE
    assert "故宫博物院" in options.first.inner_text()
    v.shot(f"search-{lang}-{size}")
    fits(v)
    field.press("ArrowDown")
    active = field.get_attribute("aria-activedescendant")
    assert active and options.first.get_attribute("id") == active
    assert options.first.get_attribute("aria-selected") == "true"
    field.press("Enter")
    v.page.wait_for_selector(f".vm-popup[data-venue='{PALACE}'] .vm-name")
    assert v.page.locator("#vm-search").is_hidden()
    v.page.wait_for_function("() => document.activeElement.classList.contains('vm-name')")
    fits(v)
    v.shot(f"search-chosen-{lang}-{size}")


def test_search_box_by_chinese_and_english_name_escape_and_nothing_found(real_site,
                                                                         visit):  # noqa: F811
    v = visit(real_site, "/?lang=en", viewport=PHONE)
    v.page.click("#vm-search-btn")
    field = v.page.locator("#vm-search-input")
    options = v.page.locator("#vm-search-list [role=option][data-id]")
    for q, expected in (("故宫", PALACE), ("palace museum", PALACE),
                        ("grand canal museum", longest("zh")), ("dayunhe", longest("zh"))):
        field.fill(q)
        v.page.wait_for_function(
            "(id) => { const o = document.querySelector('#vm-search-list [role=option]');"
            " return o && o.dataset.id === id; }", arg=expected)
        assert options.first.get_attribute("data-id") == expected
    field.fill("zzzzqqq")
    v.page.locator("#vm-search-list .vm-search-none").wait_for()
    assert re.search("No venues", v.page.locator("#vm-search-list").inner_text())
    field.press("Escape")
    field.press("Escape")
    assert v.page.locator("#vm-search").is_hidden()
    assert v.page.evaluate("document.activeElement.id") == "vm-search-btn"
    assert v.page.locator("#vm-search-btn").get_attribute("aria-expanded") == "false"
