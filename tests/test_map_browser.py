"""The map in a real headless Chromium (Debian's), driven by Playwright's sync API.

The app runs in a thread on 127.0.0.1; every request the page makes is intercepted: the
app's own are let through, the tile server's are answered with a blank tile (so the
screenshots under test-output/screenshots/ have a background), anything else fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import threading
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import feature, load

from voicemap import categories, config, create_app, db, i18n
from voicemap.assets import MAP_IMPORTS, MAP_MODULE
from voicemap.geo import wgs84_to_gcj02
from voicemap.http import security

try:  # the real clip pipeline's test helper (espeak-ng speech, published)
    from helpers import published_clip
except ImportError:
    published_clip = None

playwright_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = os.environ.get("VOICEMAP_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
XSS = "<img src=x onerror=alert(1)>"
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")

if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)


def venues_for_the_browser() -> list[dict]:
    """Two venues per category about a kilometre apart around (116.385, 39.90), and the XSS one."""
    out = []
    for n, cat in enumerate(categories.IDS * 2):
        i, j = n % 6, n // 6
        out.append(feature(f"{cat.replace('_', '-')}-{n // 9}", round(116.35 + 0.012 * i, 6),
                           round(39.89 + 0.010 * j, 6), cat, name_zh=f"{n}号场馆",
                           name_en=f"Venue number {n}", address_zh="北京市东城区一号",
                           address_en="1 Example Street", opening_hours="Daily 09:00-17:00",
                           opening_hours_zh="每天 09:00-17:00", min_age=3, max_age=12,
                           step_free=True, stroller_friendly=True, baby_care_room=False))
    out.append(feature("xss", 116.414, 39.915, "park", name_en=XSS, name_zh="公园<script>",
                       address_en="<b>bold</b> road"))
    return out


FEATURES = venues_for_the_browser()
BY_ID = {f["properties"]["id"]: f for f in FEATURES}


def blank_png(size: int = 256) -> bytes:
    raw = b"".join(b"\x00" + bytes((233, 230, 223)) * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


TILE = blank_png()


@dataclass
class Site:
    url: str
    app: object
    clip: dict | None = None

    def api(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())


def serve(app) -> tuple[str, object]:
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log(self, *args, **kwargs) -> None:
            pass

    def closing(environ, start_response):
        # werkzeug's development server skips close() on the response when the browser
        # drops the connection mid-body (its clean-up reads the dead socket first), leaving
        # an audio file open: close it when the response is collected instead.
        inner = app(environ, start_response)

        def body():
            try:
                yield from inner
            finally:
                if hasattr(inner, "close"):
                    inner.close()
        return body()

    server = make_server("127.0.0.1", 0, closing, threaded=True, request_handler=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def make_site(database_url: str, media: Path, **settings) -> tuple[Site, object]:
    app = create_app({"DATABASE_URL": database_url, "MEDIA_DIR": str(media),
                      "SECRET_KEY": "browser-test", **settings})
    url, server = serve(app)
    return Site(url, app), server


@pytest.fixture(scope="session")
def spatialite_db(tmp_path_factory):
    """A SpatiaLite file with the browser venues, one with a bare published clip row."""
    from test_pages import add_clip

    base = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{base / 'voicemap.sqlite'}"
    app = create_app({"DATABASE_URL": url, "MEDIA_DIR": str(base / "media"),
                      "SECRET_KEY": "browser-test"})
    db.init_schema(app.extensions["voicemap.engine"])
    load(app, FEATURES)
    add_clip(app, "park-0", clip_id="rowonly")  # a badge; its audio is never played
    clip = published_clip(app, "museum-0", lang="zh") if published_clip else None
    app.extensions["voicemap.engine"].dispose()
    return url, base / "media", clip


@pytest.fixture(scope="session")
def site(spatialite_db):
    url, media, clip = spatialite_db
    s, server = make_site(url, media)
    s.clip = clip
    yield s
    server.shutdown()
    s.app.extensions["voicemap.engine"].dispose()


@pytest.fixture(scope="session")
def gaode_site(spatialite_db):
    """The same registry under Gaode tiles (GCJ-02)."""
    url, media, _clip = spatialite_db
    s, server = make_site(url, media, TILES="amap")
    yield s
    server.shutdown()
    s.app.extensions["voicemap.engine"].dispose()


@pytest.fixture(scope="session")
def modules_site(spatialite_db):
    """The same registry with the map's ES modules served as they are (MAP_BUNDLE off)."""
    url, media, _clip = spatialite_db
    s, server = make_site(url, media, MAP_BUNDLE=False)
    yield s
    server.shutdown()
    s.app.extensions["voicemap.engine"].dispose()


@pytest.fixture(scope="session")
def postgis_site(tmp_path_factory):
    """The browser venues in a PostGIS database of their own (others truncate the shared one)."""
    from conftest import throwaway_postgis

    with throwaway_postgis("voicemap_browser") as url:
        s, server = make_site(url, tmp_path_factory.mktemp("pg-media"))
        db.init_schema(s.app.extensions["voicemap.engine"])
        load(s.app, FEATURES)
        yield s
        server.shutdown()
        s.app.extensions["voicemap.engine"].dispose()


@dataclass
class Visit:
    """A page in its own browser context, with what it tried that it should not have."""

    page: object
    site: Site
    foreign: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def ready(self, loads: int = 1) -> None:
        self.page.wait_for_function(
            f"() => Number(document.documentElement.dataset.vmLoads || 0) >= {loads}",
            timeout=10000)
        self.settle()

    def settle(self) -> None:
        self.page.wait_for_function("() => window.voicemap && voicemap.state.loading === 0")
        self.page.wait_for_timeout(400)  # the debounced reload and marker animations

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"))

    def csp_violations(self) -> list[str]:
        return self.page.evaluate("window.__csp || []")


@pytest.fixture
def visit(browser, request):
    """Open a path of a site: visit(site, path, viewport=PHONE, geolocation=None).

    ``timezone_id`` sets the browser's time zone; ``before(page)`` runs before the page
    loads (to install a fixed clock, say); ``bypass_csp`` lets a test inject a script
    (axe-core) into a page whose CSP forbids it. Service workers are blocked: requests a
    worker makes are not the page's, so a test could not see what the page fetches (the
    offline worker has its own tests, tests/test_offline_browser.py)."""
    opened: list[tuple[object, Visit]] = []

    def open_(site: Site, path: str, viewport=PHONE, geolocation=None, wait=True,
              timezone_id=None, before=None, bypass_csp=False) -> Visit:
        tile_hosts = {urlsplit(o).netloc
                      for o in security.tile_origins(config.tiles(site.app.config))}
        app_host = urlsplit(site.url).netloc
        ctx = browser.new_context(
            viewport=viewport, device_scale_factor=1, locale="en-US",
            is_mobile=viewport["width"] < 700, has_touch=viewport["width"] < 700,
            geolocation=geolocation, permissions=["geolocation"] if geolocation else [],
            timezone_id=timezone_id, bypass_csp=bypass_csp, service_workers="block")
        v = Visit(ctx.new_page(), site)

        def route(r):
            host = urlsplit(r.request.url).netloc
            if host == app_host:
                return r.continue_()
            if host in tile_hosts:
                return r.fulfill(body=TILE, content_type="image/png")
            v.foreign.append(r.request.url)
            return r.abort()

        ctx.route("**/*", route)
        ctx.add_init_script("window.__csp = []; document.addEventListener("
                            "'securitypolicyviolation', e => window.__csp.push("
                            "e.violatedDirective + ' ' + e.blockedURI));")
        v.page.on("dialog", lambda d: (v.dialogs.append(d.message), d.dismiss()))
        v.page.on("pageerror", lambda e: v.errors.append(str(e)))
        if before is not None:
            before(v.page)
        v.page.goto(site.url + path)
        if wait:
            v.ready()
        opened.append((ctx, v))
        return v

    yield open_
    for ctx, v in opened:
        violations = v.csp_violations() if not v.page.is_closed() else []
        ctx.close()
        assert v.foreign == [], f"requests left for other hosts: {v.foreign}"
        assert v.dialogs == [], f"dialogs fired: {v.dialogs}"
        assert v.errors == [], f"page errors: {v.errors}"
        assert violations == [], f"CSP violations: {violations}"


def markers(v: Visit, cat: str | None = None) -> list[str]:
    """The ids of venue markers drawn on the map (unclustered), optionally of one category."""
    sel = ".leaflet-marker-icon.vm-marker" + (f"[data-cat={cat}]" if cat else "")
    return v.page.evaluate(
        f"Array.from(document.querySelectorAll('{sel}')).map(e => e.getAttribute('title'))")


def interface_text(v: Visit) -> list[str]:
    """Visible interface text and accessible names, leaving out venue data, attribution and
    what is marked as in another language (the language switch names its language)."""
    return v.page.evaluate("""() => {
        const skip = '.vm-data, .leaflet-marker-icon, .leaflet-control-attribution, script, '
            + 'style, noscript, [hidden], audio';
        const out = [document.title];
        const pageLang = document.documentElement.lang;
        function visit(el) {
            if (el.matches(skip)) return;
            if (el.lang && el.lang !== pageLang) return;
            const cs = getComputedStyle(el);
            if (cs.display === 'none' || cs.visibility === 'hidden') return;
            for (const a of ['aria-label', 'title', 'alt', 'placeholder'])
                if (el.getAttribute(a)) out.push(el.getAttribute(a));
            for (const n of el.childNodes) {
                if (n.nodeType === 3 && n.textContent.trim()) out.push(n.textContent.trim());
                else if (n.nodeType === 1) visit(n);
            }
        }
        visit(document.body);
        return out;
    }""")


VIEW = "lat=39.90&lon=116.38&z=14"


# --- layers and markers -----------------------------------------------------------------


def test_nine_layers_listed_and_toggling_one_hides_and_shows_its_markers(site, visit):
    v = visit(site, f"/?lang=en&{VIEW}", viewport=DESKTOP)
    labels = v.page.locator(".leaflet-control-layers-overlays label")
    assert labels.count() == 10  # the nine categories, then the children's works
    assert v.page.locator(".leaflet-control-layers-overlays .vm-layer-label").all_inner_texts() == [
        c.en for c in categories.CATEGORIES] + ["Children's works"]
    assert len(markers(v)) == len(FEATURES)
    assert len(markers(v, "museum")) == 2
    museums = v.page.locator(".leaflet-control-layers-overlays label", has_text="Museums")
    museums.locator("input").uncheck()
    v.settle()
    assert markers(v, "museum") == []
    assert len(markers(v)) == len(FEATURES) - 2
    assert "category=" in v.page.url
    assert ("museum" not in parse_qs(
        urlsplit(v.page.url).query)["category"][0])
    v.shot("layers-museums-off-desktop")
    museums.locator("input").check()
    v.settle()
    assert len(markers(v, "museum")) == 2
    v.shot("layers-desktop")


def test_category_query_opens_with_just_those_layers_and_url_keeps_the_view(site, visit):
    v = visit(site, f"/?lang=en&category=museum,park&{VIEW}", viewport=DESKTOP)
    checked = v.page.evaluate("""Array.from(document.querySelectorAll(
        '.leaflet-control-layers-overlays input')).map(i => i.checked)""")
    assert checked[:9] == [c.id in ("museum", "park") for c in categories.CATEGORIES]
    assert {BY_ID_TITLE(t) for t in markers(v)} == {"museum", "park"}
    v.page.evaluate("voicemap.state.map.setView([39.905, 116.39], 15)")
    v.page.wait_for_function("() => location.search.includes('z=15')")
    q = parse_qs(urlsplit(v.page.url).query)
    assert q["lat"] == ["39.90500"]
    assert q["lon"] == ["116.39000"]
    assert q["lang"] == ["en"]
    assert q["category"] == ["museum,park"]
    v.page.reload()
    v.ready()
    assert v.page.evaluate("voicemap.state.map.getZoom()") == 15
    assert {BY_ID_TITLE(t) for t in markers(v)} <= {"museum", "park"}
    switch = v.page.get_attribute("#vm-lang", "href")
    assert "lang=zh" in switch
    assert "category=museum%2Cpark" in switch


def BY_ID_TITLE(title: str) -> str:  # noqa: N802 - reads as a lookup
    """A marker's category from its title ("Venue number 3, Stadiums")."""
    label = title.split(", ")[1]
    return next(c.id for c in categories.CATEGORIES if label in (c.en, c.zh))


def test_voice_filter_keeps_only_venues_with_guides(site, visit):
    v = visit(site, f"/?lang=zh&{VIEW}", viewport=DESKTOP)
    badged = v.page.evaluate("Array.from(document.querySelectorAll('.vm-marker.vm-voiced'))"
                             ".map(e => e.getAttribute('title'))")
    assert badged
    assert all("有语音导览" in t for t in badged)
    v.page.click("#vm-voiced-btn")
    v.settle()
    assert v.page.get_attribute("#vm-voiced-btn", "aria-pressed") == "true"
    assert sorted(markers(v)) == sorted(badged)
    assert "voiced=1" in v.page.url
    v.shot("voice-only-desktop-zh")
    v.page.click("#vm-voiced-btn")
    v.settle()
    assert len(markers(v)) == len(FEATURES)


# --- popups and audio ---------------------------------------------------------------------


def open_popup(v: Visit, venue_id: str) -> None:
    """Centre the map on the venue and tap its marker."""
    lon, lat = BY_ID[venue_id]["geometry"]["coordinates"]
    v.page.evaluate(f"voicemap.state.map.setView(voicemap.toDisplay({lon}, {lat}), 16, "
                    "{animate: false})")
    v.settle()
    icon = v.page.evaluate_handle(f"voicemap.state.known[{json.dumps(venue_id)}]._icon")
    icon.as_element().click()
    v.page.wait_for_selector(f".vm-popup[data-venue='{venue_id}']")
    v.settle()  # the popup's auto-pan


def test_xss_name_is_shown_as_text_and_nothing_fires(site, visit):
    v = visit(site, "/?lang=en&lat=39.915&lon=116.414&z=16")
    open_popup(v, "xss")
    popup = v.page.locator(".vm-popup")
    assert popup.locator("h2").inner_text() == XSS
    assert "<b>bold</b> road" in popup.inner_text()
    assert v.page.evaluate("document.querySelectorAll('img[src=\"x\"], .vm-popup b').length") == 0
    v.shot("popup-xss-phone")


def test_popup_shows_facts_in_the_page_language(site, visit):
    v = visit(site, f"/?lang=zh&{VIEW}", viewport=DESKTOP)
    open_popup(v, "park-0")
    text = v.page.locator(".vm-popup").inner_text()
    for expected in ("号场馆", "Venue number", "公园", "地址",
                     "北京市东城区一号", "开放时间", "每天 09:00-17:00", "3–12 岁", "无台阶通行",
                     "方便推婴儿车", "无母婴室", "语音导览", "讲解"):
        assert expected in text, expected
    assert "Daily" not in text  # the Chinese hours, not the English ones
    audio = v.page.locator(".vm-popup audio")
    assert audio.get_attribute("preload") == "none"
    assert audio.get_attribute("autoplay") is None
    assert v.page.evaluate("document.querySelector('.vm-popup audio').paused")
    v.page.locator(".vm-popup details summary").click()
    assert "这里有" in v.page.locator(".vm-popup details p").inner_text()
    v.shot("popup-desktop-zh")


@pytest.mark.parametrize("bundled", [True, False], ids=["bundle", "modules"])
def test_the_map_runs_the_same_from_its_bundle_and_from_its_modules(site, modules_site, visit,
                                                                     bundled):
    fetched: list[str] = []
    v = visit(site if bundled else modules_site, f"/?lang=zh&{VIEW}", viewport=DESKTOP,
              before=lambda page: page.on("request", lambda r: fetched.append(
                  urlsplit(r.url).path.split("/", 3)[-1])))
    open_popup(v, "park-0")
    text = v.page.locator(".vm-popup").inner_text()
    for expected in ("3–12 岁", "无台阶通行", "方便推婴儿车", "无母婴室"):  # facts.json's wording
        assert expected in text, expected
    assert v.page.evaluate("typeof voicemap.whatson") == "object", "whatson.js ran"
    overlays = v.page.locator(".leaflet-control-layers-overlays").inner_text()
    assert i18n.strings("zh")["works_layer"] in overlays, "works-map.js ran"
    ours = [name for name in fetched if name == MAP_MODULE or name in MAP_IMPORTS
            or name == "vm/facts.json"]
    if bundled:
        assert ours == [MAP_MODULE]
    else:  # each module, and facts.json as a JSON module, fetched on its own
        assert sorted(ours) == sorted([MAP_MODULE, *MAP_IMPORTS, "vm/facts.json"])


@pytest.fixture(scope="session")
def stub_mp3(tmp_path_factory) -> bytes:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    out = tmp_path_factory.mktemp("mp3") / "tone.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=2.5", "-ac", "1", "-c:a", "libmp3lame",
                    "-b:a", "64k", str(out)], check=True)
    return out.read_bytes()


def load_audio(v: Visit) -> dict:
    """Ask the popup's player for metadata, as a tap on it would, and report what it got."""
    return v.page.evaluate("""() => new Promise(resolve => {
        const a = document.querySelector('.vm-popup audio');
        const report = () => resolve({readyState: a.readyState, duration: a.duration,
                                      error: a.error && a.error.code, src: a.currentSrc});
        a.addEventListener('loadedmetadata', report, {once: true});
        a.addEventListener('error', report, {once: true});
        a.preload = 'metadata';
        a.load();
        setTimeout(report, 8000);
    })""")


def test_popup_player_loads_a_clip_from_the_clip_contract(site, visit, stub_mp3):
    """The player against a stubbed /api/venues/<id>/clips, whatever the clip pipeline's state."""
    v = visit(site, f"/?lang=en&{VIEW}", wait=False)
    clip = {"id": "stub", "venue_id": "library-0", "lang": "en", "narrator_name": "Mia",
            "narrator_age": 9, "title": "My library", "transcript": "Books <i>everywhere</i>.",
            "duration_ms": 2500, "loudness_lufs": -16, "peaks": [0.2, 0.4],
            "audio_url": "/stub-audio/stub.mp3", "status": "published"}
    v.page.route("**/api/venues/library-0/clips*",  # ?lang=: the page language first
                 lambda r: r.fulfill(json={"clips": [clip]}))
    v.page.route("**/stub-audio/stub.mp3",
                 lambda r: r.fulfill(body=stub_mp3, content_type="audio/mpeg"))
    v.ready()
    open_popup(v, "library-0")
    caption = v.page.locator(".vm-popup figcaption").inner_text()
    assert caption.startswith("English · Told by Mia, age 9 · 0:03")
    got = load_audio(v)
    assert got["readyState"] >= 1, got
    assert abs(got["duration"] - 2.5) < 0.2, got
    assert v.page.evaluate("document.querySelector('.vm-popup audio').paused")
    v.shot("popup-player-phone")


@pytest.mark.skipif(published_clip is None,
                    reason="tests/helpers.py has no published_clip yet (clip pipeline)")
def test_popup_player_loads_a_real_published_clip(site, visit):
    v = visit(site, f"/?lang=zh&{VIEW}", viewport=DESKTOP)
    open_popup(v, "museum-0")
    got = load_audio(v)
    clips = site.api("/api/venues/museum-0/clips")["clips"]
    assert got["readyState"] >= 1, got
    assert abs(got["duration"] - clips[0]["duration_ms"] / 1000) < 0.2, got
    v.shot("popup-real-clip-desktop")


# --- near me ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["spatialite", "postgis"])
def test_near_me_lists_the_nearest_venues_in_the_apis_order(backend, request, visit):
    s = request.getfixturevalue("site" if backend == "spatialite" else "postgis_site")
    here = {"latitude": 39.905, "longitude": 116.385}
    v = visit(s, "/?lang=en", geolocation=here)
    v.page.click("#vm-near-btn")
    v.page.wait_for_selector("#vm-near-list li")
    # (Where none of them has a voice guide, the nearest that do come first, set apart.)
    plain = "#vm-near-list li:not(.vm-near-voiced):not(.vm-near-sep)"
    ids = v.page.evaluate(f"Array.from(document.querySelectorAll('{plain}'))"
                          ".map(li => li.dataset.id)")
    expected = s.api("/api/nearest?lat=39.905000&lon=116.385000&k=10")["features"]
    assert ids == [f["properties"]["id"] for f in expected]
    dist = v.page.locator(".vm-near-dist").first.inner_text()
    assert re.fullmatch(r"\d+ m|\d+\.\d km|\d+ km", dist), dist
    v.settle()
    v.shot(f"near-me-phone-{backend}")
    v.page.locator(f"{plain} .vm-near-main").nth(1).click()
    second = expected[1]["properties"]["id"]
    v.page.wait_for_selector(f".vm-popup[data-venue='{second}']")
    v.settle()
    v.shot(f"near-me-chosen-phone-{backend}")


def test_near_me_without_location_asks_for_a_tap_and_uses_it(site, visit):
    v = visit(site, f"/?lang=en&{VIEW}")
    v.page.click("#vm-near-btn")
    status = v.page.locator("#vm-near-status")
    status.filter(has_text="Tap the map").wait_for()
    v.shot("near-me-refused-phone")
    point = empty_map_point(v)
    inside = list(point_in_map(v, point))
    lon, lat = v.page.evaluate(
        f"voicemap.toWgs(voicemap.state.map.containerPointToLatLng({inside}))")
    with v.page.expect_request(re.compile(r"/api/nearest\?")) as req:
        v.page.mouse.click(*point)
    sent = parse_qs(urlsplit(req.value.url).query)
    assert float(sent["lat"][0]) == pytest.approx(lat, abs=1e-5)  # a pixel is ~6e-5 here
    assert float(sent["lon"][0]) == pytest.approx(lon, abs=1e-5)
    v.page.wait_for_selector("#vm-near-list li")
    assert v.page.locator("#vm-near-title").inner_text() == "Venues nearest the chosen place"


def point_in_map(v: Visit, point: tuple[float, float]) -> tuple[float, float]:
    box = v.page.locator(".vm-map").bounding_box()
    return point[0] - box["x"], point[1] - box["y"]


def empty_map_point(v: Visit) -> tuple[float, float]:
    """A page point where a tap lands on the map itself, not on a marker or control."""
    box = v.page.locator(".vm-map").bounding_box()
    for fy in (0.35, 0.3, 0.25, 0.4, 0.2):
        for fx in (0.5, 0.4, 0.6, 0.3, 0.7):
            x = round(box["x"] + box["width"] * fx)
            y = round(box["y"] + box["height"] * fy)
            ok = v.page.evaluate(f"""(() => {{
                const e = document.elementFromPoint({x}, {y});
                return !!e && (e.classList.contains('leaflet-tile') ||
                               e.classList.contains('leaflet-container'));
            }})()""")
            if ok:
                return x, y
    raise AssertionError("no empty point on the map")


# --- datums ------------------------------------------------------------------------------------


def test_js_gcj02_port_matches_python_in_the_browser(site, visit):
    v = visit(site, "/?lang=en")
    pts = [(115.5 + i * 0.23, 39.45 + j * 0.19) for i in range(10) for j in range(9)]
    got = v.page.evaluate(
        f"{json.dumps(pts)}.map(p => voicemap.geo.wgs84ToGcj02(p[0], p[1]))")
    for (lon, lat), g in zip(pts, got, strict=True):
        assert g == pytest.approx(list(wgs84_to_gcj02(lon, lat)), abs=1e-11)


def test_gaode_basemap_shifts_markers_and_sends_wgs84(gaode_site, visit):
    here = {"latitude": 39.905, "longitude": 116.385}
    v = visit(gaode_site, f"/?lang=zh&{VIEW}", geolocation=here)
    shown = v.page.evaluate("""Object.values(voicemap.state.known).map(m =>
        [m.vm.id, m.getLatLng().lng, m.getLatLng().lat])""")
    assert len(shown) >= 8
    for vid, lng, lat in shown:
        wlon, wlat = BY_ID[vid]["geometry"]["coordinates"]
        assert (lng, lat) == pytest.approx(wgs84_to_gcj02(wlon, wlat), abs=1e-9)
    # The map's view in the URL stays WGS-84 even though the map is drawn in GCJ-02.
    q = parse_qs(urlsplit(v.page.url).query)
    # (GCJ-02 would be ~0.0013 degrees off here; 1e-4 allows the sub-pixel move Leaflet
    # makes when the page's layout resizes the map after the view is set.)
    assert float(q["lat"][0]) == pytest.approx(39.90, abs=1e-4)
    with v.page.expect_request(re.compile(r"/api/nearest\?")) as req:
        v.page.click("#vm-near-btn")
    sent = parse_qs(urlsplit(req.value.url).query)
    assert (sent["lat"], sent["lon"]) == (["39.905000"], ["116.385000"])  # untouched WGS-84
    v.page.wait_for_selector("#vm-near-list li")
    v.settle()
    v.shot("near-me-gaode-phone-zh")


# --- language, accessibility ----------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_interface_text_is_all_in_the_pages_language(site, visit, lang):
    v = visit(site, f"/?lang={lang}&{VIEW}", geolocation={"latitude": 39.9, "longitude": 116.38})
    open_popup(v, "park-0")
    texts = interface_text(v)
    v.page.click(".leaflet-popup-close-button")
    v.page.click("#vm-near-btn")
    v.page.wait_for_selector("#vm-near-list li")
    v.page.locator(".vm-legend summary").click()
    texts += interface_text(v)
    joined = "\n".join(texts)
    if lang == "en":
        assert CJK.findall(joined) == [], [t for t in texts if CJK.search(t)]
    else:
        latin = [t for t in texts if re.search(r"[A-Za-z]{2,}", t)]
        assert latin == []
    assert i18n.strings(lang)["near_me"] in joined
    v.shot(f"interface-{lang}-phone")


def test_controls_are_big_enough_to_tap_and_named(site, visit):
    v = visit(site, f"/?lang=en&{VIEW}")
    small = v.page.evaluate("""() => {
        const sel = 'button, a[href], summary, .leaflet-marker-icon, '
            + '.leaflet-control-layers-toggle';
        return Array.from(document.querySelectorAll(sel)).filter(e => {
            if (e.closest('.leaflet-control-attribution, [hidden]')) return false;
            const r = e.getBoundingClientRect();
            return r.width > 0 && (r.width < 44 || r.height < 44);
        }).map(e => e.outerHTML.slice(0, 80));
    }""")
    assert small == []
    unnamed = v.page.evaluate("""() => Array.from(document.querySelectorAll('button, a[href]'))
        .filter(e => !(e.getAttribute('aria-label') || e.textContent.trim() || e.title))
        .map(e => e.outerHTML.slice(0, 80))""")
    assert unnamed == []
    seen = set()
    for _ in range(12):
        v.page.keyboard.press("Tab")
        seen.add(v.page.evaluate("document.activeElement.id || document.activeElement.className"))
    assert {"vm-lang", "vm-near-btn", "vm-voiced-btn"} <= seen, seen
    v.shot("phone-start")


def test_english_desktop_and_chinese_phone_screenshots(site, visit):
    v = visit(site, "/?lang=en", viewport=DESKTOP)
    v.shot("start-desktop-en")
    v = visit(site, "/?lang=zh")
    v.page.locator(".vm-legend summary").click()
    v.shot("legend-phone-zh")
    v = visit(site, "/venues/xss?lang=zh", wait=False)
    v.page.wait_for_selector(".vm-venue-map .leaflet-marker-icon")
    v.shot("venue-page-phone-zh")
