"""Where the web layer's files are: templates, static files, the gettext catalogues and the
map's assets.

A checkout keeps them in ``web/`` at the top of the repository; a built package carries the
same tree as ``voicemap/web`` (setup.py maps ``web/`` into the wheel and the sdist). The
installed copy wins where both exist, so an installed package never reads a stray ``web/``
that happens to sit beside it in site-packages. Standard library only: setup.py reads the
list of map assets from here before anything is installed.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent

# The npm files the app serves (see assets.ASSET_FILES), relative to WEB_DIR, and the licence
# files that must travel with them.
NPM_FILES = (
    "node_modules/leaflet/dist/leaflet.js",
    "node_modules/leaflet/dist/leaflet.css",
    *(f"node_modules/leaflet/dist/images/{n}"
      for n in ("layers.png", "layers-2x.png", "marker-icon.png", "marker-icon-2x.png",
                "marker-shadow.png")),
    "node_modules/leaflet/LICENSE",
    "node_modules/leaflet.markercluster/dist/leaflet.markercluster.js",
    "node_modules/leaflet.markercluster/dist/MarkerCluster.css",
    "node_modules/leaflet.markercluster/MIT-LICENCE.txt",
    "node_modules/leaflet.featuregroup.subgroup/dist/leaflet.featuregroup.subgroup.js",
    "node_modules/leaflet.featuregroup.subgroup/LICENSE",
)

# The map page's scripts bundled into one file (web/bundle.mjs, run by scripts/setup), with
# its source map, relative to WEB_DIR: built, not committed, and shipped with the package.
MAP_BUNDLE = ("build/vm/map-page.js", "build/vm/map-page.js.map")


def _web_dir() -> Path:
    installed = PACKAGE_DIR / "web"
    if (installed / "templates").is_dir():
        return installed
    return PACKAGE_DIR.parent / "web"


WEB_DIR = _web_dir()
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
# The gettext catalogues: translations/<lang>/LC_MESSAGES/messages.po (voicemap.i18n)
TRANSLATIONS_DIR = WEB_DIR / "translations"
