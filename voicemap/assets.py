"""The asset store: the allow-listed files served under ``/assets/<version>/<name>``.

The map's and pages' scripts, styles and images (Leaflet and its plugins from npm, our own
``web/static/vm`` files, the category colours as CSS) are read once, gzipped once and named
by one version that changes whenever any of them does (cache busting). Nothing outside
``ASSET_FILES`` (and the map's bundle and source map) is ever served from here. ``MAP_JS``,
``MAP_MODULE`` and ``MAP_CSS`` are what the map page loads, in order.

The map page's own JavaScript is ES modules, one concern each, under ``web/static/vm/``:
an entry module, fifteen modules it imports and ``facts.json``. Served as they are, a first
visit pays a request for each (measured in bench/bench_map.py); so ``MAP_MODULE`` is served
as one bundle of them all, built by esbuild at set-up (``web/bundle.mjs``). The bundle names
its sources and their SHA-256 on its first line: a bundle older than its sources is
refused, never served. With ``MAP_BUNDLE`` off (``VOICEMAP_MAP_BUNDLE=false``, for working
on the modules without rebuilding) the same URL serves the entry module, and the page
preloads its imports.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, request

from . import categories
from .resources import MAP_BUNDLE, WEB_DIR

# The map page's one module script: the bundle of the modules below, or (MAP_BUNDLE off) the
# entry module itself, importing them.
MAP_MODULE = "vm/map-page.js"
# The map's ES modules under vm/map/, imported by vm/map.js (relative imports resolve under
# the versioned asset URL).
MAP_MODULE_NAMES = ("format", "hours", "facts", "controls", "markers", "data", "popup", "near",
                    "filters", "layout", "list", "url")
# What the entry module imports, directly or not: the page preloads them when unbundled.
MAP_IMPORTS = ("vm/map.js", *(f"vm/map/{n}.js" for n in MAP_MODULE_NAMES), "vm/whatson.js",
               "vm/works-map.js")

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
    MAP_MODULE: "static/vm/map-page.js",  # the map page's entry module (replaced by its bundle)
    "vm/map.js": "static/vm/map.js",  # the map page's ES modules: map.js imports vm/map/*
    **{f"vm/map/{n}.js": f"static/vm/map/{n}.js" for n in MAP_MODULE_NAMES},
    "vm/facts.json": "static/vm/facts.json",  # how venue facts read (venue_text, vm/map/popup.js)
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
MAP_CSS = ("leaflet/leaflet.css", "markercluster/MarkerCluster.css", "vm/vm.css",
           "vm/categories.css", "vm/act.css", "vm/works.css")
MIMETYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png",
             ".svg": "image/svg+xml", ".json": "application/json", ".map": "application/json"}
# The bundle's first line: the SHA-256 of its sources, then their paths (relative to WEB_DIR).
BUNDLE_BANNER = re.compile(rb"/\* voicemap map bundle, sha256 ([0-9a-f]{64}) of ([^*\n]+) \*/\n")



@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None  # None where compressing does not pay (PNG)
    mimetype: str


class Assets:
    """The allow-listed files in memory, and one version naming them all (cache busting)."""

    def __init__(self, web_dir: Path = WEB_DIR, bundle: bool = True) -> None:
        files: dict[str, bytes] = {}
        for name, rel in ASSET_FILES.items():
            path = web_dir / rel
            if not path.is_file():
                raise RuntimeError(f"map asset {path} is missing: run scripts/setup "
                                   "(npm ci in web/) to install the map's scripts")
            files[name] = path.read_bytes()
        files["vm/categories.css"] = categories_css().encode()
        self.bundled = bundle
        if bundle:
            files[MAP_MODULE] = read_bundle(web_dir)
            files[MAP_MODULE + ".map"] = (web_dir / MAP_BUNDLE[1]).read_bytes()
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
        ext["voicemap.assets"] = Assets(bundle=current_app.config.get("MAP_BUNDLE", True))
    return ext["voicemap.assets"]


def read_bundle(web_dir: Path = WEB_DIR) -> bytes:
    """The map's bundle, if it was built from the sources as they are now; else RuntimeError."""
    path = web_dir / MAP_BUNDLE[0]
    fix = ("run scripts/setup (or `npm run bundle` in web/), or set VOICEMAP_MAP_BUNDLE=false "
           "to serve the modules as they are")
    if not (path.is_file() and (web_dir / MAP_BUNDLE[1]).is_file()):
        raise RuntimeError(f"the map's bundle {path} is missing: {fix}")
    body = path.read_bytes()
    banner = BUNDLE_BANNER.match(body)
    if banner is None:
        raise RuntimeError(f"{path} is not a voicemap map bundle: {fix}")
    digest = hashlib.sha256()
    for rel in banner.group(2).decode().split():
        source = web_dir / rel
        digest.update(rel.encode() + b"\0" + (source.read_bytes() if source.is_file() else b"")
                      + b"\0")
    if digest.hexdigest().encode() != banner.group(1):
        raise RuntimeError(f"the map's bundle {path} was built from other sources than those "
                           f"in {web_dir / 'static'}: {fix}")
    return body


def categories_css() -> str:
    """One class per category carrying its colour, for legends, layer names and markers."""
    return "".join(f".vm-c-{c.id}{{--vm-c:{c.colour}}}\n" for c in categories.CATEGORIES)

