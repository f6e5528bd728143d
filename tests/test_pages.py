"""The family-facing pages on both backends: the map page, venue pages, QR codes, assets."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import feature, load, random_features

from voicemap import categories, create_app, db, i18n, resources, venue_text
from voicemap.assets import BUNDLE_BANNER, MAP_IMPORTS, MAP_MODULE, Assets
from voicemap.models import Clip

ROOT = Path(__file__).resolve().parent.parent
XSS = "<img src=x onerror=alert(1)>"
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")
CDN_HOSTS = ("jsdelivr", "unpkg.com", "cdnjs", "code.jquery.com", "bootstrapcdn",
             "googleapis.com", "gstatic.com", "fontawesome.com", "rawgit", "staticfile.org",
             "bootcdn", "cdn.")


@pytest.fixture
def loaded(app):
    features = random_features(40)
    features.append(feature("xss", 116.4, 39.9, "park", name_en=XSS, name_zh="公园<script>",
                            address_en="1 <b>Bold</b> Road", opening_hours="09:00-17:00",
                            min_age=3, max_age=12, step_free=True, stroller_friendly=False,
                            website="https://example.org/park"))
    load(app, features)
    return features


def add_clip(app, venue_id: str, clip_id: str = "c1", status: str = "published", **kw) -> None:
    """A clip row as the clip pipeline would leave it (no audio bytes: pages only list it)."""
    now = datetime.now(UTC)
    values = dict(id=clip_id, venue_id=venue_id, lang="zh", narrator_name="小明",
                  narrator_age=9, title="我的公园", transcript="这里有<b>大树</b>。",
                  status=status, duration_ms=83_000, loudness_lufs=-16.0, true_peak_dbtp=-1.5,
                  peaks="[0.1, 0.5]", audio_sha256="a" * 64, original_sha256="b" * 64,
                  original_format="wav", consent_by="parent", consent_at=now)
    values.update(kw)
    with app.app_context(), db.session_scope() as session:
        session.add(Clip(**values))


def inline_scripts(html: str) -> list[str]:
    return [body for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
            if "src=" not in attrs and "application/json" not in attrs]


# --- the map page ---------------------------------------------------------------------


def test_map_page_is_a_folium_shell_with_nine_layers_and_controls(client):
    r = client.get("/?lang=en")
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "L.markerClusterGroup" in html
    assert "L.featureGroup.subGroup" in html
    assert "L.control.layers" in html
    assert "voicemap.start(" in html
    for cat in categories.CATEGORIES:
        assert f'vm-c-{cat.id}\\"' in html or f"vm-c-{cat.id}" in html
        assert cat.en in html
    for element_id in ("vm-near-btn", "vm-voiced-btn", "vm-legend", "vm-lang", "vm-near"):
        assert f'id="{element_id}"' in html
    assert 'aria-pressed="false"' in html


def test_map_page_holds_no_venue_data(client, loaded):
    html = client.get("/?lang=en").get_data(as_text=True)
    assert "v00001" not in html
    assert "Venue v000" not in html
    assert "onerror" not in html
    assert "L.marker(" not in html


@pytest.mark.parametrize("query,header,lang", [
    ("?lang=en", None, "en"),
    ("?lang=zh", "en-GB,en;q=0.9", "zh"),
    ("?lang=en-US", None, "en"),
    ("", "en-GB,en;q=0.9", "en"),
    ("", "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    ("", "fr-FR", "zh"),
    ("", None, "zh"),
    ("?lang=xx", "en", "en"),
])
def test_language_from_query_then_accept_language(client, query, header, lang):
    headers = {"Accept-Language": header} if header else {}
    r = client.get("/" + query, headers=headers)
    assert r.headers["Content-Language"] == lang
    html = r.get_data(as_text=True)
    assert f'<html lang="{i18n.strings(lang)["html_lang"]}">' in html
    assert ("Accept-Language" in r.headers.get("Vary", "")) == ("lang=" not in query)


def without_language_switch(html: str) -> str:
    """The page without the language switch (the other language, named in itself) and the
    map's copy of its label."""
    html, n = re.subn(r'<a class="vm-btn vm-lang"[^>]*>.*?</a>', "", html, flags=re.S)
    assert n == 1
    return re.sub(r'"switch_lang": "(中文|English)"', "", html)


def test_english_page_has_no_chinese_and_chinese_page_no_english_interface_text(client):
    en = client.get("/?lang=en").get_data(as_text=True)
    # ... but for the language switch, which names the other language in itself
    assert 'lang="zh-CN"><svg' in en
    assert ">中文</span>" in en
    en = without_language_switch(en)
    assert not CJK.findall(en), CJK.findall(en)[:10]
    zh = client.get("/?lang=zh").get_data(as_text=True)
    assert ">English</span>" in zh
    zh = without_language_switch(zh)
    zh = re.sub(r'"[a-z][a-z0-9_]*":', '"":', zh)  # the settings' keys are not interface text
    # the strings the map can show (not /manage's, nor the exhibition's one-word captions,
    # which are also identifiers in the page's code: "work", "open")
    english = [v for k, v in i18n.strings("en").items() if k != "html_lang"
               and len(i18n.PLACEHOLDER.sub("", v).strip()) > 2
               and not k.startswith((*i18n.SERVER_ONLY_STRINGS, "judge_slide"))]
    english += [c.en for c in categories.CATEGORIES]
    assert [s for s in english if s in zh] == []
    # The map's settings carry only the page's language.
    assert i18n.strings("zh")["near_me"] in zh
    assert i18n.strings("en")["near_me"] in en


def test_i18n_tables_have_the_same_keys_and_placeholders():
    zh, en = i18n.strings("zh"), i18n.strings("en")
    assert zh.keys() == en.keys()
    for key in zh:
        assert set(i18n.PLACEHOLDER.findall(zh[key])) == set(i18n.PLACEHOLDER.findall(en[key])), \
            key


def test_csp_hashes_every_inline_script_and_allows_only_self_and_tiles(client):
    r = client.get("/?lang=zh")
    csp = r.headers["Content-Security-Policy"]
    html = r.get_data(as_text=True)
    scripts = inline_scripts(html)
    assert len(scripts) == 1  # Folium's one script; everything else is a file
    for body in scripts:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["img-src"] == "'self' data: https://tile.openstreetmap.org"
    assert directives["connect-src"] == "'self'"
    assert directives["media-src"] == "'self'"
    assert "<style" not in html
    assert "style=" not in html
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_gaode_tiles_put_their_hosts_in_the_csp_and_gcj02_in_the_settings(database_url,
                                                                          tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "TILES": "amap",
                      "MEDIA_DIR": str(tmp_path / "m"), "SECRET_KEY": "x"})
    r = app.test_client().get("/?lang=zh")
    img = [d for d in r.headers["Content-Security-Policy"].split(";") if "img-src" in d][0]
    assert img.split()[1:] == ["'self'", "data:"] + [
        f"https://webrd0{s}.is.autonavi.com" for s in "1234"]
    assert '"datum": "gcj02"' in r.get_data(as_text=True)
    app.extensions["voicemap.engine"].dispose()


def test_page_references_only_local_assets_which_are_served_with_long_caching(client):
    html = client.get("/?lang=en").get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assets = [u for u in urls if u.startswith("/assets/")]
    assert len(assets) >= 9
    local = ("/assets/", "?lang=", "/info?lang=", "/works?")
    assert [u for u in urls if not u.startswith(local)] == []
    hosts = set(re.findall(r"https?://([a-z0-9.{}-]+)", html))
    assert hosts <= {"tile.openstreetmap.org", "www.openstreetmap.org"}, hosts
    for url in assets:
        r = client.get(url)
        assert r.status_code == 200, url
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert r.mimetype in ("text/javascript", "text/css", "image/svg+xml", "image/png")
        assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_assets_gzip_and_allow_list(client):
    html = client.get("/").get_data(as_text=True)
    url = re.search(r'src="(/assets/[^"]+/leaflet/leaflet\.js)"', html).group(1)
    plain = client.get(url)
    zipped = client.get(url, headers={"Accept-Encoding": "gzip, br"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    version = url.split("/")[2]
    assert client.get(f"/assets/{version}/../setup.cfg").status_code == 404
    assert client.get(f"/assets/{version}/leaflet/package.json").status_code == 404
    stale = client.get("/assets/000000000000/leaflet/leaflet.js")
    assert stale.status_code == 200
    assert stale.headers["Cache-Control"] == "no-cache"
    r = client.get(url, headers={"If-None-Match": plain.headers["ETag"]})
    assert r.status_code == 304


def test_map_scripts_are_one_bundle_of_every_module_with_a_source_map(client):
    html = client.get("/?lang=en").get_data(as_text=True)
    modules = re.findall(r'<script type="module" src="([^"]+)"', html)
    assert len(modules) == 1
    assert modules[0].endswith("/" + MAP_MODULE)
    assert "modulepreload" not in html
    bundle = client.get(modules[0])
    assert bundle.mimetype == "text/javascript"
    assert bundle.data == (ROOT / "web" / resources.MAP_BUNDLE[0]).read_bytes()
    banner = BUNDLE_BANNER.match(bundle.data)
    assert banner is not None
    # every module the entry reaches, and facts.json (no fetch when the first popup opens)
    assert set(banner.group(2).decode().split()) == {
        "static/vm/map-page.js", "static/vm/facts.json", *(f"static/{n}" for n in MAP_IMPORTS)}
    assert re.search(rb"\bimport\s*[{(*\"']|\bimport\.meta|\bexport\s*[{*]", bundle.data) is None
    assert bundle.data.rstrip().endswith(b"//# sourceMappingURL=map-page.js.map")
    source_map = client.get(modules[0] + ".map")
    assert source_map.status_code == 200
    assert source_map.mimetype == "application/json"
    sources = source_map.get_json()["sources"]
    assert any(name.endswith("static/vm/map/popup.js") for name in sources)


def test_unbundled_map_page_loads_the_entry_module_and_preloads_its_imports(database_url,
                                                                            tmp_path):
    app = create_app({"DATABASE_URL": database_url, "MEDIA_DIR": str(tmp_path / "media"),
                      "MAP_BUNDLE": "false"})
    client = app.test_client()
    html = client.get("/?lang=en").get_data(as_text=True)
    modules = re.findall(r'<script type="module" src="([^"]+)"', html)
    assert len(modules) == 1
    entry = client.get(modules[0])
    assert entry.data == (ROOT / "web" / "static" / "vm" / "map-page.js").read_bytes()
    preloads = re.findall(r'<link rel="modulepreload" href="([^"]+)"', html)
    assert [u.split("/", 3)[3] for u in preloads] == list(MAP_IMPORTS)
    for url in preloads:
        assert client.get(url).status_code == 200, url
    app.extensions["voicemap.engine"].dispose()


def test_a_bundle_older_than_its_sources_is_refused_until_rebuilt(tmp_path):
    web = tmp_path / "web"
    shutil.copytree(ROOT / "web", web, ignore=shutil.ignore_patterns("node_modules"))
    (web / "node_modules").symlink_to(ROOT / "web" / "node_modules")
    bundle = web / resources.MAP_BUNDLE[0]
    assert Assets(web).files[MAP_MODULE].body == bundle.read_bytes()

    facts = web / "static" / "vm" / "facts.json"
    table = json.loads(facts.read_text(encoding="utf-8"))
    facts.write_text(json.dumps(table, ensure_ascii=False, indent=1), encoding="utf-8")
    with pytest.raises(RuntimeError, match="other sources"):
        Assets(web)
    # unbundled, the same URL serves the entry module, whatever the bundle's state
    assert Assets(web, bundle=False).files[MAP_MODULE].body == \
        (web / "static" / "vm" / "map-page.js").read_bytes()

    subprocess.run(["npm", "run", "--silent", "bundle"], cwd=web, check=True)
    rebuilt = Assets(web).files[MAP_MODULE].body
    assert BUNDLE_BANNER.match(rebuilt).group(1) != \
        BUNDLE_BANNER.match((ROOT / "web" / resources.MAP_BUNDLE[0]).read_bytes()).group(1)

    near = web / "static" / "vm" / "map" / "near.js"
    near.write_text(near.read_text(encoding="utf-8") + "// an edit\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="other sources"):
        Assets(web)
    bundle.unlink()
    with pytest.raises(RuntimeError, match="missing.*scripts/setup"):
        Assets(web)
    bundle.write_text("console.log('not ours');\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="not a voicemap map bundle"):
        Assets(web)


def test_no_cdn_url_in_the_source():
    files = [p for base in ("voicemap", "web") for p in (ROOT / base).rglob("*")
             if p.is_file() and "node_modules" not in p.parts and "__pycache__" not in p.parts]
    assert any(p.parts[-3:] == tuple(resources.MAP_BUNDLE[0].split("/")) for p in files)
    # Of node_modules, only the files the package ships (and the app serves) count: the
    # READMEs and examples of the npm packages name CDNs, and are neither served nor shipped.
    files += [ROOT / "web" / name for name in resources.NPM_FILES]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8", errors="ignore").lower()
        found = [h for h in CDN_HOSTS if h in text]
        assert not found, (path, found)


def test_page_is_rendered_once_and_then_served_from_cache(app, client):
    client.get("/?lang=en")
    renders = app.extensions["voicemap.map_renders"]
    for _ in range(5):
        assert client.get("/?lang=en").status_code == 200
    assert app.extensions["voicemap.map_renders"] == renders
    client.get("/?lang=zh")
    assert app.extensions["voicemap.map_renders"] == renders + 1


def test_map_page_gzip_and_etag(client):
    plain = client.get("/?lang=en")
    zipped = client.get("/?lang=en", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    assert len(zipped.data) < len(plain.data) / 2
    again = client.get("/?lang=en", headers={"If-None-Match": plain.headers["ETag"]})
    assert again.status_code == 304


# --- the compact venue data --------------------------------------------------------------


def test_map_data_points_in_bbox(client, loaded):
    r = client.get("/api/map/venues?bbox=116.0,39.7,116.8,40.2&zoom=12&lang=en")
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    doc = r.get_json()
    assert doc["mode"] == "points"
    assert len(doc["v"]) == len(loaded)
    row = next(v for v in doc["v"] if v[0] == "xss")
    assert row[1:4] == [116.4, 39.9, categories.IDS.index("park")]
    assert row[4] == 0
    assert row[5] == XSS
    assert row[6:] == [3, 12, "09:00-17:00"]  # ages and hours, for the map's family filters
    zh = client.get("/api/map/venues?bbox=116.399,39.899,116.401,39.901&lang=zh").get_json()
    assert [v[5] for v in zh["v"]] == ["公园<script>"]


def test_map_data_filters_category_and_voice(app, client, loaded):
    add_clip(app, "xss")
    add_clip(app, "v00001", clip_id="c2", status="pending")
    r = client.get("/api/map/venues?bbox=116,39.7,116.8,40.2&category=park,museum").get_json()
    cats = {categories.IDS[v[3]] for v in r["v"]}
    assert cats == {"park", "museum"}
    voiced = client.get("/api/map/venues?bbox=116,39.7,116.8,40.2&voiced=1").get_json()
    assert [(v[0], v[4]) for v in voiced["v"]] == [("xss", 1)]


def test_map_data_turns_to_grid_counts_past_the_limit(app, client, loaded):
    app.config["MAP_POINT_LIMIT"] = 10
    doc = client.get("/api/map/venues?bbox=116,39.7,116.8,40.2&zoom=10").get_json()
    assert doc["mode"] == "grid"
    assert sum(c[2] for c in doc["cells"]) == len(loaded)
    assert all(116 <= c[0] <= 116.8 for c in doc["cells"])
    assert all(39.7 <= c[1] <= 40.2 for c in doc["cells"])
    coarse = client.get("/api/map/venues?bbox=116,39.7,116.8,40.2&zoom=6").get_json()
    assert len(coarse["cells"]) < len(doc["cells"])


@pytest.mark.parametrize("query,param", [
    ("bbox=1,2,3", "bbox"), ("bbox=116,40,115,39", "bbox"), ("zoom=x", "zoom"),
    ("category=zoo", "category")])
def test_map_data_bad_parameters_are_json_400s(client, query, param):
    r = client.get(f"/api/map/venues?{query}")
    assert r.status_code == 400
    assert r.get_json()["param"] == param


def test_map_data_is_gzipped_when_large(client, loaded):
    r = client.get("/api/map/venues?bbox=116,39.7,116.8,40.2", headers={"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(r.data))["mode"] == "points"


# --- venue pages -----------------------------------------------------------------------


def test_venue_page_escapes_data_and_lists_published_clips(app, client, loaded):
    add_clip(app, "xss", transcript="这里有<b>大树</b>。")
    add_clip(app, "xss", clip_id="hidden", status="pending", transcript="secret")
    r = client.get("/venues/xss?lang=en")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert XSS not in html
    assert "公园&lt;script&gt;" in html
    assert "<b>" not in html
    # Nothing downloaded before a tap; the stored duration for player.js to show meanwhile.
    assert ('<audio controls preload="none" src="/audio/c1.mp3" data-duration-ms="83000">'
            '</audio>') in html
    assert "autoplay" not in html
    assert "secret" not in html
    assert "<details" in html
    assert "这里有&lt;b&gt;大树&lt;/b&gt;。" in html
    assert "Told by" in html
    assert "1:23" in html
    assert "Step-free access" in html
    assert "Not stroller-friendly" in html
    assert "3–12 years" in html
    assert 'href="https://example.org/park"' in html
    assert inline_scripts(html) == []
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp
    assert "sha256" not in csp


def test_venue_page_open_graph_uses_public_url_or_request_root(app, client, loaded):
    html = client.get("/venues/xss?lang=zh").get_data(as_text=True)
    assert '<meta property="og:url" content="http://localhost/venues/xss">' in html
    assert '<meta property="og:title" content="公园&lt;script&gt; · &lt;img' in html
    assert 'property="og:description"' in html
    app.config["PUBLIC_URL"] = "https://voicemap.example.org/"
    html = client.get("/venues/xss").get_data(as_text=True)
    assert 'content="https://voicemap.example.org/venues/xss"' in html


def test_venue_page_languages_do_not_mix(client, loaded):
    en = client.get("/venues/v00003?lang=en").get_data(as_text=True)
    assert '>中文</span>' in en
    assert CJK.findall(without_language_switch(en).replace("场馆v00003", "")) == []
    zh = client.get("/venues/v00003?lang=zh").get_data(as_text=True)
    assert '>English</span>' in zh
    assert "Voice guides" not in zh
    assert "Back to the map" not in zh


def test_venue_page_shows_opening_hours_in_the_page_language(app, client):
    load(app, [feature("both", 116.4, 39.9, opening_hours="Tue-Sun 09:00-17:00, closed Mon",
                       opening_hours_zh="周二至周日 09:00-17:00，周一闭馆"),
               feature("english-only", 116.41, 39.9, opening_hours="Daily 06:00-22:00")])
    zh = client.get("/venues/both?lang=zh").get_data(as_text=True)
    assert '<span class="vm-data" lang="zh-CN">周二至周日 09:00-17:00，周一闭馆</span>' in zh
    assert "closed Mon" not in zh
    en = client.get("/venues/both?lang=en").get_data(as_text=True)
    assert '<span class="vm-data" lang="en">Tue-Sun 09:00-17:00, closed Mon</span>' in en
    assert "周一闭馆" not in en
    # With only English hours, the Chinese page shows them, marked as English.
    fallback = client.get("/venues/english-only?lang=zh").get_data(as_text=True)
    assert '<span class="vm-data" lang="en">Daily 06:00-22:00</span>' in fallback


def test_unknown_venue_is_a_friendly_html_404(client, loaded):
    r = client.get("/venues/nope?lang=en")
    assert r.status_code == 404
    assert r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert "Venue not found" in html
    assert 'href="/?lang=en"' in html
    zh = client.get("/venues/nope", headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 404
    assert "找不到这个场馆" in zh.get_data(as_text=True)
    assert client.get("/venues/nope/qr.svg").status_code == 404


def test_qr_codes_are_valid_svg_and_png(app, client, loaded):
    app.config["PUBLIC_URL"] = "https://voicemap.example.org"
    svg = client.get("/venues/xss/qr.svg")
    assert svg.status_code == 200
    assert svg.mimetype == "image/svg+xml"
    root = ET.fromstring(svg.data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}title").text == (
        "https://voicemap.example.org/venues/xss")
    png = client.get("/venues/xss/qr.png")
    assert png.status_code == 200
    assert png.mimetype == "image/png"
    assert png.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png.data[16:24])
    assert width == height >= 21 * 8
    assert client.get("/venues/xss/qr.gif").status_code == 404


def test_error_pages_elsewhere_are_html_in_the_browsers_language(client):
    r = client.get("/no/such/page", headers={"Accept-Language": "en"})
    assert r.status_code == 404
    assert "Page not found" in r.get_data(as_text=True)


# --- posters and the JS datum port -----------------------------------------------------


def test_posters_one_per_venue_with_both_names_and_a_qr(app, loaded, tmp_path):
    from voicemap.errors import BadRequest
    from voicemap.posters import write_posters

    with pytest.raises(BadRequest):
        write_posters(app, tmp_path / "none")
    app.config["PUBLIC_URL"] = "https://voicemap.example.org"
    paths = write_posters(app, tmp_path / "posters")
    assert len(paths) == len(loaded)
    assert (tmp_path / "posters" / "all.html").exists()
    html = (tmp_path / "posters" / "xss.html").read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert XSS not in html
    assert "公园&lt;script&gt;" in html
    assert "<svg" in html
    assert "https://voicemap.example.org/venues/xss" in html
    assert "扫一扫" in html
    assert "Scan to hear" in html


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_js_gcj02_port_matches_python():
    from voicemap.geo import gcj02_to_wgs84, wgs84_to_gcj02

    points = [(116.0 + i * 0.137, 39.4 + j * 0.171) for i in range(12) for j in range(10)]
    points += [(121.47, 31.23), (113.26, 23.13), (2.35, 48.85), (-74.0, 40.7)]
    script = ("const g = require(process.argv[1]); const pts = JSON.parse(process.argv[2]);"
              "console.log(JSON.stringify(pts.map(p => [g.wgs84ToGcj02(p[0], p[1]),"
              " g.gcj02ToWgs84(p[0], p[1])])));")
    out = subprocess.run(["node", "-e", script, str(ROOT / "web/static/vm/gcj02.js"),
                          json.dumps(points)], capture_output=True, text=True, check=True)
    for (lon, lat), (fwd, inv) in zip(points, json.loads(out.stdout), strict=True):
        assert fwd == pytest.approx(wgs84_to_gcj02(lon, lat), abs=1e-11)
        assert inv == pytest.approx(gcj02_to_wgs84(lon, lat), abs=1e-11)


def test_venue_page_back_link_is_the_plain_map_for_venue_js_to_take_back(client, loaded):
    page = client.get("/venues/xss?lang=en").get_data(as_text=True)
    back = re.search(r'<a [^>]*id="vm-back"[^>]*>', page)
    assert back, "no back link"
    assert 'href="/?lang=en"' in back.group(0)  # no state: history.back() restores it


@pytest.mark.parametrize(("ages", "zh", "en"), [
    ({"min_age": 0}, "不限年龄", "All ages"),
    ({"min_age": 0, "max_age": 14}, "14 岁及以下", "Up to 14 years"),
    ({"min_age": 3}, "3 岁及以上", "3 years and up"),
    ({"min_age": 2, "max_age": 12}, "2–12 岁", "2–12 years"),
])
def test_venue_page_says_ages_in_the_page_language_and_all_ages_from_zero(app, client, ages,
                                                                          zh, en):
    load(app, [feature("aged", 116.4, 39.9, **ages)])
    zh_page = client.get("/venues/aged?lang=zh").get_data(as_text=True)
    en_page = client.get("/venues/aged?lang=en").get_data(as_text=True)
    assert f"<dd>{zh}</dd>" in zh_page
    assert f"<dd>{en}</dd>" in en_page
    for page in (zh_page, en_page):
        assert "0 岁" not in page and "0 years" not in page and "0–" not in page


def test_venue_page_without_ages_says_nothing_about_them(app, client):
    load(app, [feature("ageless", 116.4, 39.9)])
    page = client.get("/venues/ageless?lang=zh").get_data(as_text=True)
    assert "不限年龄" not in page and "<dt>适合年龄</dt>" not in page


def test_venue_page_has_go_there_links_and_a_share_button(app, client):
    from html import unescape

    from voicemap.geo import wgs84_to_bd09, wgs84_to_gcj02

    load(app, [feature("gate", 116.3913, 39.9152, name_zh="故宫博物院",
                       name_en="The Palace Museum (Forbidden City)")])
    for lang, name in (("zh", "故宫博物院"), ("en", "The Palace Museum (Forbidden City)")):
        html = client.get(f"/venues/gate?lang={lang}").get_data(as_text=True)
        links = venue_text.map_app_links(name, 116.3913, 39.9152)
        hrefs = [unescape(h) for h in
                 re.findall(r'class="vm-btn vm-go-app" href="([^"]+)"', html)]
        glon, glat = wgs84_to_gcj02(116.3913, 39.9152)
        assert hrefs[0].startswith(f"https://uri.amap.com/marker?position={glon:.6f},{glat:.6f}")
        blon, blat = wgs84_to_bd09(116.3913, 39.9152)
        assert f"location={blat:.6f},{blon:.6f}" in hrefs[1]
        assert hrefs[2] == links["apple"]
        assert i18n.strings(lang)["ven_go_there"] in html
        # share: the page's canonical address; hidden until go.js knows how to share
        assert re.search(r'<button type="button" class="vm-btn vm-share" '
                         r'data-url="http://localhost/venues/gate" data-title="[^"]+" hidden>',
                         html)
