"""The family-facing pages: the map, one page per venue with its QR codes, and their assets.

``mappage`` (Folium, pandas) is imported where it is used: an app built by a light CLI
command never loads it. A server loads it while the blueprint registers (``warm``).
"""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import segno
from flask import (
    Blueprint,
    Response,
    current_app,
    has_request_context,
    render_template,
    request,
    url_for,
)

from .. import activities, categories, config, db, i18n, mapdata, venue_text, venues
from .. import clips as clip_service
from ..assets import assets
from ..errors import NotFound
from .api import integer

bp = Blueprint("pages", __name__)

YEAR = 365 * 24 * 3600


def choose_lang() -> str:
    """``?lang=`` if it names a language we have, else the browser's Accept-Language, else zh."""
    from ..i18n import LANGS

    asked = (request.args.get("lang") or "").lower().split("-")[0]
    if asked in LANGS:
        return asked
    return request.accept_languages.best_match(LANGS) or "zh"


def page_lang() -> str | None:
    """The language a request's page is in (Flask-Babel's locale selector): /manage keeps
    its own choice (``manage.lang``, remembered in the session), other pages
    ``choose_lang``. None outside a request (Flask-Babel's default, zh)."""
    if not has_request_context():
        return None
    if request.blueprint == "manage":
        from .manage import lang

        return lang()
    return choose_lang()


def send(body: bytes, mimetype: str, gzipped: bytes | None = None, **headers: str) -> Response:
    """A response with the gzipped body when the client takes gzip and one is given."""
    use_gzip = gzipped is not None and "gzip" in request.accept_encodings
    resp = Response(gzipped if use_gzip else body, mimetype=mimetype)
    if use_gzip:
        resp.headers["Content-Encoding"] = "gzip"
    if gzipped is not None:
        resp.vary.add("Accept-Encoding")
    resp.headers.update(headers)
    return resp


@bp.record_once
def warm(state) -> None:
    # Import the map stack and read and compress the assets now rather than in a family's
    # first request; an app built for a CLI command (PRELOAD off) skips it.
    if not state.app.config.get("PRELOAD", True):
        return
    from . import mappage  # noqa: F401 (Folium, imported now rather than by the first page)

    with state.app.app_context():
        try:
            assets()
        except RuntimeError:  # no node_modules yet: the first page will say so
            pass
    venues.warm_search()  # pypinyin's dictionaries, for the map's search box


@bp.app_context_processor
def template_helpers() -> dict[str, Any]:
    # Functions, not values: templates are also rendered outside requests (posters).
    def asset_url(name: str, required: bool = True) -> str | None:
        try:
            return assets().url(name)
        except RuntimeError:  # no node_modules: an error page still renders, unstyled
            if required:
                raise
            return None

    def ui_strings() -> dict[str, str]:
        return i18n.strings(choose_lang())

    return {"asset_url": asset_url, "ui_strings": ui_strings}


@bp.get("/")
def index():
    from . import mappage

    lang = choose_lang()
    page = mappage.map_page(lang)
    resp = send(page.html, "text/html", page.gzipped, **{
        "Content-Security-Policy": page.csp, "Content-Language": lang,
        "Cache-Control": "no-cache"})
    resp.set_etag(page.etag.strip('"') + ("-gz" if "Content-Encoding" in resp.headers else ""))
    if "lang" not in request.args:
        resp.vary.add("Accept-Language")
    return resp.make_conditional(request)


@bp.get("/assets/<version>/<path:name>")
def asset(version: str, name: str):
    store = assets()
    found = store.files.get(name)
    if found is None:
        raise NotFound("no such asset")
    current = version == store.version
    resp = send(found.body, found.mimetype, found.gzipped, **{
        "Cache-Control": f"public, max-age={YEAR}, immutable" if current else "no-cache"})
    resp.set_etag(f"{store.version}-{name}")
    return resp.make_conditional(request)


@bp.get("/sw.js")
def service_worker():
    """The offline service worker, from the site's root so that its scope covers the venue
    pages (and ``Service-Worker-Allowed: /`` says so). Never cached by HTTP: a new version
    must reach phones on their next visit."""
    found = assets().files["vm/sw.js"]
    resp = send(found.body, "text/javascript", found.gzipped, **{
        "Cache-Control": "no-cache, no-store, must-revalidate",
        "Service-Worker-Allowed": "/",
        "Content-Security-Policy": "default-src 'self'"})
    return resp


@bp.get("/manifest.webmanifest")
def manifest():
    """The web app manifest: the map is the app's start, in the page's language."""
    lang = choose_lang()
    t = i18n.strings(lang)
    body = {"name": t["app_name"], "short_name": t["app_name"], "lang": t["html_lang"],
            "description": t["tagline"], "start_url": url_for("pages.index", lang=lang),
            "scope": "/", "display": "standalone", "background_color": "#ffffff",
            "theme_color": "#1a56db",
            "icons": [{"src": assets().url("vm/favicon.svg"), "sizes": "any",
                       "type": "image/svg+xml", "purpose": "any"}]}
    resp = send(json.dumps(body, ensure_ascii=False).encode(), "application/manifest+json",
                **{"Cache-Control": "public, max-age=3600"})
    if "lang" not in request.args:
        resp.vary.add("Accept-Language")
    return resp


@bp.get("/api/map/venues")
def map_venues():
    """Compact venues for the map's view: ``bbox`` (WGS-84), ``zoom``, ``category``, ``voiced``."""
    bbox = config.parse_bbox(request.args.get("bbox") or "-180,-90,180,90")
    zoom = min(max(integer("zoom", 11), 0), 22)
    cats = venues.check_categories(request.args.getlist("category"))
    lang = request.args.get("lang") if request.args.get("lang") in i18n.LANGS else "zh"
    limit = int(current_app.config.get("MAP_POINT_LIMIT", mapdata.POINT_LIMIT))
    data = mapdata.map_data(db.get_session().connection(), bbox, zoom, cats,
                            request.args.get("voiced") == "1", lang, limit)
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return send(body, "application/json",
                gzip.compress(body, 6, mtime=0) if len(body) > 1400 else None,
                **{"Cache-Control": "public, max-age=30"})


def venue_url(venue_id: str) -> str:
    """The venue page's public address: PUBLIC_URL when set, else this request's root."""
    base = (current_app.config.get("PUBLIC_URL") or request.url_root).rstrip("/")
    return f"{base}/venues/{venue_id}"


def find_venue(venue_id: str) -> dict[str, Any] | None:
    try:
        return json.loads(venues.get_feature(db.get_session(), venue_id))
    except NotFound:
        return None


@bp.get("/venues/<venue_id>")
def venue(venue_id: str):
    lang = choose_lang()
    t = i18n.strings(lang)
    feature = find_venue(venue_id)
    if feature is None:
        page = render_template("venue_404.html", t=t, lang=lang)
        return Response(page, 404, mimetype="text/html", headers={"Content-Language": lang})
    p = feature["properties"]
    cat = categories.get(p["category"]) or categories.CATEGORIES[0]
    clips = [clip_service.to_dict(c) for c in clip_service.in_page_order(
        clip_service.for_venue(db.get_session(), venue_id), lang)]
    from .. import works as work_service  # children's works pinned to the venue

    pinned = work_service.for_venue(db.get_session(), venue_id)
    tiles = config.tiles(current_app.config)
    lon, lat = feature["geometry"]["coordinates"]
    settings = {"lon": lon, "lat": lat, "datum": tiles["datum"], "tiles": tiles,
                "glyph": cat.icon, "cat": cat.id,
                "t": i18n.js_strings(lang, ("zoom_in", "zoom_out", "venue_map_label",
                                            "ven_share", "ven_copy_link", "ven_link_copied",
                                            "ven_copy_failed", "play", "pause",
                                            "ven_position"))}
    page = render_template(
        "venue.html", t=t, lang=lang, other="en" if lang == "zh" else "zh", p=p, cat=cat,
        cat_label=cat.label(lang), clips=clips, url=venue_url(venue_id), settings=settings,
        summary=venue_summary(p, cat.label(lang), len(clips), t, lang),
        ages=venue_text.ages_text(p, t), access=venue_text.access_facts(p, t),
        site=venue_text.web_link(p.get("website")),
        map_url=url_for("pages.index", lang=lang),
        on_map_url=url_for("pages.index", lang=lang, venue=venue_id, lat=f"{lat:.5f}",
                           lon=f"{lon:.5f}", z=16),
        go=venue_text.map_app_links(p.get(f"name_{lang}") or p["name_zh"], lon, lat,
                                    p.get(f"address_{lang}") or p.get("address_zh") or ""),
        qr_svg=url_for("pages.venue_qr", venue_id=venue_id, fmt="svg"), works=pinned,
        acts=upcoming_activities(venue_id, lang),
        ics_url=url_for("activities.venue_feed", venue_id=venue_id, lang=lang))
    resp = Response(page, mimetype="text/html", headers={"Content-Language": lang})
    if "lang" not in request.args:
        resp.vary.add("Accept-Language")
    return resp


def upcoming_activities(venue_id: str, lang: str, limit: int = 10) -> list[dict[str, Any]]:
    """The venue's next occurrences (cancelled ones marked), with their time said in words."""
    now = activities.utc(activities.utcnow())
    found = activities.occurrences(db.get_session(), activities.Filters(
        now, now + activities.DEFAULT_WINDOW * 2, venue_id=venue_id))[:limit]
    return [{**f["properties"], "when": activities.when_text(f["properties"], lang)}
            for f in found]


def venue_summary(p: dict[str, Any], cat_label: str, n_clips: int, t: i18n.Strings,
                  lang: str) -> str:
    """One line for link previews: category, address, how many voice guides."""
    other = "en" if lang == "zh" else "zh"
    parts = [cat_label, p.get(f"address_{lang}") or p.get(f"address_{other}") or ""]
    parts.append(t.ngettext("voice_count", n_clips) if n_clips else t["no_guides"])
    return " · ".join(x for x in parts if x)


@bp.get("/venues/<venue_id>/qr.<any(svg, png):fmt>")
def venue_qr(venue_id: str, fmt: str):
    if find_venue(venue_id) is None:
        raise NotFound(f"no venue with id {venue_id!r}")
    qr = segno.make(venue_url(venue_id), error="m")
    out = io.BytesIO()
    if fmt == "svg":
        qr.save(out, kind="svg", scale=4, border=2, xmldecl=False, title=venue_url(venue_id))
        mimetype = "image/svg+xml"
    else:
        qr.save(out, kind="png", scale=8, border=2)
        mimetype = "image/png"
    resp = Response(out.getvalue(), mimetype=mimetype, headers={
        "Cache-Control": "public, max-age=86400",
        "Content-Security-Policy": "default-src 'none'"})
    if not current_app.config.get("PUBLIC_URL"):
        resp.vary.add("Host")  # the code holds this request's (trusted) host name
    return resp
