"""The map: a Folium shell on the app's own assets, the compact venue data it loads, its CSP.

The rendered page holds no venue data: ``web/static/vm/map.js`` asks ``/api/map/venues`` for
the venues in view (compact rows, or counts per grid cell when a view holds too many) and
builds the markers in the browser. So the HTML depends only on the language, the tile set and
the asset versions: it is rendered once per such key and kept, with the hashes of its inline
script and styles (for the Content-Security-Policy) and a gzipped copy.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import folium
from branca.element import Element, Figure, MacroElement
from flask import current_app, render_template, request
from folium.plugins import FeatureGroupSubGroup, MarkerCluster
from folium.template import Template
from sqlalchemy import Connection, bindparam, text

from . import backends, categories, config
from .i18n import SERVER_ONLY_STRINGS, strings
from .resources import WEB_DIR

CENTRE = (116.3975, 39.9087)  # lon, lat (WGS-84): Tiananmen, where the map opens
START_ZOOM = 11
POINT_LIMIT = 5000  # more venues than this in view: the data endpoint answers grid counts
CELL_PX = 80  # grid cell size, in screen pixels at the requested zoom

# The map's ES modules under vm/map/, imported by vm/map.js (relative imports resolve under
# the versioned asset URL).
MAP_MODULE_NAMES = ("format", "hours", "facts", "controls", "markers", "data", "popup", "near",
                    "filters", "layout", "list", "url")

# The files the app serves under /assets/<version>/<name>: an allow-list, nothing else.
ASSET_FILES: dict[str, str] = {
    "leaflet/leaflet.js": "node_modules/leaflet/dist/leaflet.js",
    "leaflet/leaflet.css": "node_modules/leaflet/dist/leaflet.css",
    **{f"leaflet/images/{n}": f"node_modules/leaflet/dist/images/{n}"
       for n in ("layers.png", "layers-2x.png", "marker-icon.png", "marker-icon-2x.png",
                 "marker-shadow.png")},
    "markercluster/leaflet.markercluster.js":
        "node_modules/leaflet.markercluster/dist/leaflet.markercluster.js",
    "markercluster/MarkerCluster.css": "node_modules/leaflet.markercluster/dist/MarkerCluster.css",
    "subgroup/leaflet.featuregroup.subgroup.js":
        "node_modules/leaflet.featuregroup.subgroup/dist/leaflet.featuregroup.subgroup.js",
    "vm/gcj02.js": "static/vm/gcj02.js",
    "vm/map.js": "static/vm/map.js",  # the map page's ES modules: map.js imports vm/map/*
    **{f"vm/map/{n}.js": f"static/vm/map/{n}.js" for n in MAP_MODULE_NAMES},
    "vm/facts.json": "static/vm/facts.json",  # how venue facts read (FACTS, vm/map/popup.js)
    "vm/venue.js": "static/vm/venue.js",
    "vm/go.js": "static/vm/go.js",  # "go there" links and sharing (map popup, venue page)
    "vm/search.js": "static/vm/search.js",  # the map's venue search box
    "vm/player.js": "static/vm/player.js",  # players showing the known duration
    "vm/whatson.js": "static/vm/whatson.js",
    "vm/act.css": "static/vm/act.css",
    "vm/works.css": "static/vm/works.css",  # children's works: pages and the map layer
    "vm/works.js": "static/vm/works.js",
    "vm/works-map.js": "static/vm/works-map.js",
    "vm/judge.css": "static/vm/judge.css",  # judging: published results, the exhibition
    "vm/exhibition.js": "static/vm/exhibition.js",
    "vm/vm.css": "static/vm/vm.css",
    "vm/favicon.svg": "static/vm/favicon.svg",
    "vm/ogc.css": "static/vm/ogc.css",  # the OGC API's HTML pages
    "vm/ogc.js": "static/vm/ogc.js",
    "vm/offline.js": "static/vm/offline.js",  # save a venue for offline
    "vm/plays.js": "static/vm/plays.js",  # the play-count beacon (map and venue page)
    "vm/sw.js": "static/vm/sw.js",  # served at /sw.js (scope: the whole site)
}
MAP_JS = ("leaflet/leaflet.js", "markercluster/leaflet.markercluster.js",
          "subgroup/leaflet.featuregroup.subgroup.js", "vm/gcj02.js", "vm/go.js",
          "vm/player.js", "vm/search.js", "vm/plays.js")
# Loaded as <script type="module">, in this order, after the classic scripts above and before
# the page's own (inline, module) script that calls voicemap.start.
MAP_MODULES = ("vm/map.js", "vm/whatson.js", "vm/works-map.js")
MAP_CSS = ("leaflet/leaflet.css", "markercluster/MarkerCluster.css", "vm/vm.css",
           "vm/categories.css", "vm/act.css", "vm/works.css")
MIMETYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png",
             ".svg": "image/svg+xml", ".json": "application/json"}


# --- assets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None  # None where compressing does not pay (PNG)
    mimetype: str


class Assets:
    """The allow-listed files in memory, and one version naming them all (cache busting)."""

    def __init__(self, web_dir: Path = WEB_DIR) -> None:
        files: dict[str, bytes] = {}
        for name, rel in ASSET_FILES.items():
            path = web_dir / rel
            if not path.is_file():
                raise RuntimeError(f"map asset {path} is missing: run scripts/setup "
                                   "(npm ci in web/) to install the map's scripts")
            files[name] = path.read_bytes()
        files["vm/categories.css"] = categories_css().encode()
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name] + b"\0")
        self.version = digest.hexdigest()[:12]
        self.files = {name: Asset(body, None if name.endswith(".png")
                                  else gzip.compress(body, 9, mtime=0),
                                  MIMETYPES[Path(name).suffix])
                      for name, body in files.items()}

    def url(self, name: str) -> str:
        if name not in self.files:
            raise KeyError(f"not an asset: {name}")
        return f"{request.script_root}/assets/{self.version}/{name}"


def assets() -> Assets:
    """The current app's assets, loaded on first use."""
    ext = current_app.extensions
    if "voicemap.assets" not in ext:
        ext["voicemap.assets"] = Assets()
    return ext["voicemap.assets"]


def categories_css() -> str:
    """One class per category carrying its colour, for legends, layer names and markers."""
    return "".join(f".vm-c-{c.id}{{--vm-c:{c.colour}}}\n" for c in categories.CATEGORIES)


# --- security ----------------------------------------------------------------------------


def tile_origins(tiles: dict[str, Any]) -> list[str]:
    """The origins the tile layer loads images from, with ``{s}`` expanded."""
    parts = urlsplit(tiles["url"])
    hosts = [parts.netloc]
    if "{s}" in parts.netloc:
        subdomains = tiles.get("subdomains") or "abc"
        hosts = [parts.netloc.replace("{s}", s) for s in subdomains]
    return [f"{parts.scheme}://{h}" for h in hosts]


def content_security_policy(tiles: dict[str, Any], scripts: tuple[str, ...] = (),
                            styles: tuple[str, ...] = ()) -> str:
    """A CSP allowing the app's own origin, the tile server's images and hashed inline code."""
    def src(*extra: str) -> str:
        return " ".join(("'self'", *extra))

    return "; ".join((
        f"default-src {src()}",
        f"script-src {src(*scripts)}",
        f"style-src {src(*styles)}",
        # data: is Leaflet's blank image for tiles it stops loading
        f"img-src {src('data:', *tile_origins(tiles))}",
        "connect-src 'self'", "media-src 'self'", "font-src 'self'",
        # the offline service worker (/sw.js) and the web app manifest
        "worker-src 'self'", "manifest-src 'self'",
        "object-src 'none'", "base-uri 'none'", "form-action 'self'",
        "frame-ancestors 'self'",
    ))


_INLINE = re.compile(r"<(script|style)\b([^>]*)>(.*?)</\1>", re.S | re.I)


def inline_hashes(html: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """CSP source expressions for every inline script and style block of ``html``."""
    scripts, styles = [], []
    for tag, attrs, body in _INLINE.findall(html):
        if tag.lower() == "script" and ("src=" in attrs or "application/json" in attrs):
            continue
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        (scripts if tag.lower() == "script" else styles).append(f"'sha256-{digest}'")
    return tuple(dict.fromkeys(scripts)), tuple(dict.fromkeys(styles))


# --- the Folium page ---------------------------------------------------------------------


class _Figure(Figure):
    _template = Template(
        "<!DOCTYPE html>\n"
        '<html lang="{{ this.lang }}">\n<head>\n{{ this.header.render(**kwargs) }}\n</head>\n'
        '<body class="vm-map-page">\n{{ this.html.render(**kwargs) }}\n'
        '<script type="module">\n{{ this.script.render(**kwargs) }}\n</script>\n</body>\n</html>\n')

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang


class _Map(folium.Map):
    """folium.Map without its CDN links and inline styles, with a labelled container."""

    _template = Template("""
        {% macro html(this, kwargs) %}
        <div class="folium-map vm-map" id={{ this.get_name()|tojson }} role="region"
             aria-label="{{ this.label|e }}"></div>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.map({{ this.get_name()|tojson }}, {
            center: {{ this.location|tojson }}, crs: L.CRS.{{ this.crs }},
            ...{{ this.options|tojavascript }}
        });
        {% endmacro %}
    """)


class _Cluster(MarkerCluster):
    default_js: list[tuple[str, str]] = []
    default_css: list[tuple[str, str]] = []


class _SubGroup(FeatureGroupSubGroup):
    default_js: list[tuple[str, str]] = []
    default_css: list[tuple[str, str]] = []


class _Start(MacroElement):
    """Hands the Folium-made objects and the page's settings to map.js."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        voicemap.start({{ this.refs }}, {{ this.settings }});
        {% endmacro %}
    """)

    def __init__(self, refs: str, settings: dict[str, Any]) -> None:
        super().__init__()
        self._name = "VoicemapStart"
        self.refs = refs
        self.settings = json.dumps(settings, ensure_ascii=False).replace("<", "\\u003c")


def layer_name(cat: categories.Category, lang: str) -> str:
    """A layer control entry: the category's icon on its colour, then its label (trusted)."""
    return (f'<span class="vm-swatch vm-c-{cat.id}" aria-hidden="true">{cat.icon}</span>'
            f'<span class="vm-layer-label">{cat.label(lang)}</span>')


def build_map_html(lang: str, tiles: dict[str, Any], store: Assets) -> str:
    """Render the map page for one language and tile set (no venue data in it)."""
    t = strings(lang)
    area = current_app.config["SERVICE_AREA"]
    m = _Map(location=[CENTRE[1], CENTRE[0]], zoom_start=START_ZOOM, tiles=None,
             zoom_control=False, max_bounds=True, min_lon=area[0] - 0.5,
             min_lat=area[1] - 0.5, max_lon=area[2] + 0.5, max_lat=area[3] + 0.5,
             minZoom=8, maxZoom=tiles["max_zoom"])
    m.label = t["map_label"]
    m.default_js = [(name, store.url(name)) for name in MAP_JS]
    m.default_css = [(name, store.url(name)) for name in MAP_CSS]
    fig = _Figure(t["html_lang"])
    fig.add_child(m)
    fig.header.add_child(Element(render_template(
        "map_head.html", t=t, favicon=store.url("vm/favicon.svg"),
        modules=[store.url(name) for name in MAP_MODULES],
        preload=[store.url(f"vm/map/{n}.js") for n in MAP_MODULE_NAMES])), name="vm_head")
    fig.html.add_child(Element(render_template("map_ui.html", t=t, lang=lang,
                                               cats=categories.CATEGORIES)), name="vm_ui")

    cluster = _Cluster(control=False, options={
        "showCoverageOnHover": False, "chunkedLoading": True, "maxClusterRadius": 56,
        "spiderfyDistanceMultiplier": 1.6},
        icon_create_function="function (c) { return voicemap.clusterIcon(c); }")
    m.add_child(cluster)
    subs = {}
    for cat in categories.CATEGORIES:
        subs[cat.id] = _SubGroup(cluster, name=layer_name(cat, lang))
        m.add_child(subs[cat.id])
    control = folium.LayerControl(position="topright", collapsed=True)
    m.add_child(control)
    layers = ", ".join(f"{json.dumps(cid)}: {sub.get_name()}" for cid, sub in subs.items())
    refs = (f"{{map: {m.get_name()}, cluster: {cluster.get_name()}, "
            f"control: {control.get_name()}, layers: {{{layers}}}}}")
    m.add_child(_Start(refs, page_settings(lang, tiles)))
    # Added last, so that map.js has set the view from the URL before any tile loads.
    m.add_child(folium.TileLayer(
        tiles=tiles["url"], attr=tiles["attribution"] or " ", max_zoom=tiles["max_zoom"],
        subdomains=tiles.get("subdomains") or "abc", control=False, name="basemap"))
    return stable_ids(fig.render())


_FOLIUM_ID = re.compile(r"(?<=_)[0-9a-f]{32}(?![0-9a-f])")


def stable_ids(html: str) -> str:
    """Replace Folium's random element ids (``map_<32 hex>``) by numbers in order of first
    appearance: the same page is then the same bytes in every worker and on every host, so
    its ETag holds across them."""
    numbers: dict[str, str] = {}

    def number(match: re.Match[str]) -> str:
        return numbers.setdefault(match.group(0), f"{len(numbers) + 1:032x}")

    return _FOLIUM_ID.sub(number, html)


def page_settings(lang: str, tiles: dict[str, Any]) -> dict[str, Any]:
    """What map.js needs: language, strings, categories, datum and the API's addresses."""
    root = request.script_root
    return {
        "lang": lang, "t": {k: v for k, v in strings(lang).items()
                            if not k.startswith(SERVER_ONLY_STRINGS)},
        "datum": tiles["datum"],
        "maxZoom": tiles["max_zoom"], "centre": CENTRE, "zoom": START_ZOOM,
        "categories": [{"id": c.id, "label": c.label(lang), "colour": c.colour,
                        "icon": c.icon} for c in categories.CATEGORIES],
        "urls": {"data": f"{root}/api/map/venues", "nearest": f"{root}/api/nearest",
                 "venue": f"{root}/api/venues/", "page": f"{root}/venues/",
                 "home": f"{root}/", "activities": f"{root}/api/activities",
                 "search": f"{root}/api/search"},
    }


@dataclass(frozen=True)
class Page:
    html: bytes
    gzipped: bytes
    csp: str
    etag: str


def map_page(lang: str) -> Page:
    """The map page for ``lang``, rendered once per (language, tiles, assets, root) and kept."""
    app = current_app
    tiles = config.tiles(app.config)
    store = assets()
    key = (lang, json.dumps(tiles, sort_keys=True), store.version, request.script_root)
    pages: dict[tuple, Page] = app.extensions.setdefault("voicemap.map_pages", {})
    page = pages.get(key)
    if page is None:
        with app.extensions.setdefault("voicemap.map_lock", threading.Lock()):
            page = pages.get(key)
            if page is None:
                html = build_map_html(lang, tiles, store)
                scripts, styles = inline_hashes(html)
                body = html.encode()
                page = Page(body, gzip.compress(body, 9, mtime=0),
                            content_security_policy(tiles, scripts, styles),
                            '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
                pages[key] = page
                app.extensions["voicemap.map_renders"] = (
                    app.extensions.get("voicemap.map_renders", 0) + 1)
    return page


# --- the data the map loads --------------------------------------------------------------


_CLIP_COUNTS = ("LEFT JOIN (SELECT venue_id, count(*) AS n FROM clips "
                "WHERE status = 'published' GROUP BY venue_id) c ON c.venue_id = v.id")
def map_data(conn: Connection, bbox: tuple[float, float, float, float], zoom: int,
             cats: list[str] | None, voiced: bool, lang: str,
             limit: int = POINT_LIMIT) -> dict[str, Any]:
    """The venues in ``bbox`` (WGS-84) as compact rows, or, past ``limit``, grid counts.

    Points: ``{"mode": "points", "v": [[id, lon, lat, category index, clips, name, min_age,
    max_age, opening_hours], ...]}`` with the name in ``lang``, the ages (null: not known)
    and the English opening hours as written in the registry (map.js parses them for
    "open now" and the age filter). Grid: ``{"mode": "grid", "cells": [[lon, lat, count,
    voiced], ...]}`` with each cell at the mean position of its venues.
    """
    backend = backends.select(conn)
    sql = backend.MAP_SQL
    where = [sql["box"] or backend.bbox_sql("v")]
    params: dict[str, Any] = dict(zip(("minlon", "minlat", "maxlon", "maxlat"), bbox,
                                      strict=True))
    binds = []
    if cats:
        where.append(sql["cats"])
        params["cats"] = list(cats)
        binds.append(bindparam("cats", expanding=True))
    if voiced:
        where.append(sql["voiced"])
    cond = " AND ".join(where)
    many = conn.execute(text(
        f"SELECT count(*) FROM (SELECT 1 FROM {sql['source']} WHERE {cond} LIMIT :limit) t")
        .bindparams(*binds), {**params, "limit": limit + 1}).scalar_one()
    if many <= limit:
        name = "v.name_zh" if lang == "zh" else "v.name_en"
        index = {cid: i for i, cid in enumerate(categories.IDS)}
        rows = conn.execute(text(
            f"SELECT v.id, ST_X(v.geom), ST_Y(v.geom), v.category, COALESCE(c.n, 0), {name}, "
            f"v.min_age, v.max_age, v.opening_hours "
            f"FROM {sql['source']} {sql['join']} {_CLIP_COUNTS} WHERE {cond}")
            .bindparams(*binds), params)
        return {"mode": "points", "v": [
            [vid, round(x, 6), round(y, 6), index.get(cat, 0), n, label, lo, hi, hours]
            for vid, x, y, cat, n, label, lo, hi, hours in rows]}
    x, y = sql["x"], sql["y"]
    gx, gy = sql["cell"].format(x, 180), sql["cell"].format(y, 90)
    cells = conn.execute(text(
        f"SELECT {gx} AS gx, {gy} AS gy, count(*), "
        f"sum(CASE WHEN {sql['voiced']} THEN 1 ELSE 0 END), avg({x}), avg({y}) "
        f"FROM {sql['source']} WHERE {cond} GROUP BY gx, gy").bindparams(*binds),
        {**params, "cell": 360.0 / 2 ** zoom * CELL_PX / 256}).all()
    return {"mode": "grid", "cells": [[round(cx, 6), round(cy, 6), int(n), int(nv or 0)]
                                      for _gx, _gy, n, nv, cx, cy in cells]}


# --- venue facts as interface text (the venue page and posters; map.js reads the same table) --

# How ages, access facts and map-app links read: one table (web/static/vm/facts.json, also
# an asset) for this module and the map's popup (vm/map/popup.js fetches it).
FACTS: dict[str, Any] = json.loads((WEB_DIR / "static" / "vm" / "facts.json").read_text("utf-8"))


def _age_matches(cond: Any, value: Any, side: str) -> bool:
    unbounded = value in FACTS["ages"]["unbounded"][side]
    if cond == "bounded":
        return not unbounded
    if cond == "unbounded":
        return unbounded
    return value == cond and type(value) is type(cond)  # a number, or None


def ages_text(p: dict[str, Any], t: dict[str, str]) -> str | None:
    """"3–12 years", "6 years and up", "All ages" (from 0, no upper bound), ... or None when
    the registry says nothing. A lower bound of 0 is no bound ("Up to 14", not "0–14")."""
    lo, hi = p.get("min_age"), p.get("max_age")
    for rule in FACTS["ages"]["rules"]:
        if _age_matches(rule["min"], lo, "min") and _age_matches(rule["max"], hi, "max"):
            return t[rule["text"]].format(min=lo, max=hi)
    return None


def access_facts(p: dict[str, Any], t: dict[str, str]) -> list[tuple[bool, str]]:
    """(is it so, label) for each access fact the registry knows."""
    return [(bool(p[f["field"]]), t[f["yes"]] if p[f["field"]] else t[f["no"]])
            for f in FACTS["access"] if p.get(f["field"]) is not None]


def map_app_links(name: str, lon: float, lat: float, address: str = "") -> dict[str, str]:
    """Links that open the venue (WGS-84 ``lon``, ``lat``) in the phone's map app ("go
    there"), each in the datum it expects, from the URL templates in facts.json, which
    ``web/static/vm/go.js`` fills the same way in the map's popup (a test compares them).

    - Gaode/Amap's URI API, ``coordinate=gaode``: GCJ-02; ``callnative=1`` opens the app
      where it is installed, else Amap's web page.
    - Baidu's URI API, ``coord_type=bd09ll``: BD-09, ``location`` is latitude first.
    - Apple Maps (iOS): in mainland China it shows AutoNavi's GCJ-02 map, and places given
      in WGS-84 land some 500 m off (as MapKit annotations do); so GCJ-02 there too (outside
      China the two coincide).
    """
    from urllib.parse import quote

    from .geo import wgs84_to_bd09, wgs84_to_gcj02

    glon, glat = wgs84_to_gcj02(lon, lat)
    blon, blat = wgs84_to_bd09(lon, lat)
    values = {"gcj_lon": f"{glon:.6f}", "gcj_lat": f"{glat:.6f}", "bd_lon": f"{blon:.6f}",
              "bd_lat": f"{blat:.6f}", "name": quote(name, safe=""),
              "address": quote(address or name, safe="")}
    return {app: url.format(**values) for app, url in FACTS["map_apps"].items()}


def web_link(url: str | None) -> dict[str, str] | None:
    """An http(s) link as {href, host}; anything else (javascript:, data:) is dropped."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return {"href": parts.geturl(), "host": parts.hostname or parts.netloc}
