"""The map page: a Folium shell on the app's own assets, rendered once per key and kept.

The rendered page holds no venue data: ``web/static/vm/map.js`` asks ``/api/map/venues``
(``voicemap.mapdata``) for the venues in view and builds the markers in the browser. So the
HTML depends only on the language, the tile set, the asset versions and the script root: it
is rendered once per such key and kept (``map_page``), with the Content-Security-Policy
carrying the hashes of its inline script and styles (``security.inline_hashes``) and a
gzipped copy. Folium is imported here and nowhere else: the app factory and the light CLI
commands never load it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import threading
from dataclasses import dataclass
from typing import Any

import folium
from branca.element import Element, Figure, MacroElement
from flask import current_app, render_template, request
from folium.plugins import FeatureGroupSubGroup, MarkerCluster
from folium.template import Template

from .. import categories, config
from ..assets import MAP_CSS, MAP_IMPORTS, MAP_JS, MAP_MODULE, Assets, assets
from ..i18n import SERVER_ONLY_STRINGS, js_catalogue, strings
from .security import content_security_policy, inline_hashes

CENTRE = (116.3975, 39.9087)  # lon, lat (WGS-84): Tiananmen, where the map opens
START_ZOOM = 11


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
        module=store.url(MAP_MODULE),
        preload=[] if store.bundled else [store.url(name) for name in MAP_IMPORTS])),
        name="vm_head")
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
        "lang": lang, "t": js_catalogue(lang, SERVER_ONLY_STRINGS),
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

