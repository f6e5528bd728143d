"""OGC API - Features under /ogc: landing page, conformance, OpenAPI, collections, items.

Thin views over ``voicemap.ogc``. Every resource is JSON (GeoJSON for features) or HTML,
chosen by ``f=json|html`` or else by the ``Accept`` header (QGIS and GDAL send no ``f``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, url_for

from .. import config, db, ogc, tiles
from ..errors import BadRequest

bp = Blueprint("ogc", __name__, url_prefix="/ogc")

JSON = "application/json"
GEOJSON = "application/geo+json"
HTML = "text/html"
SCHEMA = "application/schema+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
REL_CONFORMANCE = "http://www.opengis.net/def/rel/ogc/1.0/conformance"


def wants_html() -> bool:
    """``f=html``, or no ``f`` and an ``Accept`` header that prefers HTML (a browser)."""
    fmt = request.args.get("f")
    if fmt is not None:
        if fmt not in ("json", "html"):
            raise BadRequest(f"f must be json or html, got {fmt!r}", param="f")
        return fmt == "html"
    best = request.accept_mimetypes.best_match([JSON, GEOJSON, HTML], default=JSON)
    return best == HTML


def url(endpoint: str, **values: Any) -> str:
    return url_for(endpoint, _external=True, **values)


def link(href: str, rel: str, type_: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": type_, "title": title}


def self_links(endpoint: str, json_type: str = JSON, **values: Any) -> list[dict[str, str]]:
    """``self`` and ``alternate`` links of this resource in its two representations."""
    html = wants_html()
    as_json = link(url(endpoint, f="json", **values), "self" if not html else "alternate",
                   json_type, "this document as JSON")
    as_html = link(url(endpoint, f="html", **values), "self" if html else "alternate",
                   HTML, "this document as HTML")
    return [as_html, as_json] if html else [as_json, as_html]


def answer(body: dict[str, Any], template: str, mimetype: str = JSON, **context: Any
           ) -> Response:
    """The document as JSON, or rendered as HTML."""
    if wants_html():
        page = render_template(f"ogc/{template}", doc=body, **context)
        resp = Response(page, mimetype=HTML)
    else:
        resp = Response(json.dumps(body, ensure_ascii=False), mimetype=mimetype)
    resp.vary.add("Accept")
    return resp


def extra_links(collection: ogc.Collection) -> list[dict[str, str]]:
    base = url("ogc.landing").rstrip("/") + "/"
    return [{**{k: v for k, v in lnk.items() if k != "href"}, "href": base + lnk["href"]}
            for lnk in collection.links]


@bp.get("/")
@bp.get("")
def landing():
    links = [*self_links("ogc.landing"),
             link(url("ogc.api", f="json"), "service-desc", OPENAPI,
                  "the API definition (OpenAPI 3.0)"),
             link(url("ogc.api", f="html"), "service-doc", HTML,
                  "the API documentation"),
             link(url("ogc.conformance", f="json"), "conformance", JSON,
                  "the conformance classes implemented"),
             link(url("ogc.collections", f="json"), "data", JSON,
                  "the collections of features")]
    for collection in ogc.COLLECTIONS.values():
        links.extend(extra_links(collection))
    body = {"title": "voicemap: OGC API - Features",
            "description": "Beijing's child-friendly venues (and other public datasets of "
                           "voicemap) for GIS tools: QGIS, GDAL/ogr2ogr, owslib, ArcGIS.",
            "links": links}
    return answer(body, "landing.html")


@bp.get("/conformance")
def conformance():
    body = {"links": self_links("ogc.conformance"),
            "conformsTo": list(ogc.CONFORMANCE) + list(tiles.CONFORMANCE)}
    return answer(body, "conformance.html")


@bp.get("/api")
def api():
    from . import openapi

    doc = openapi.document(url("ogc.landing").rstrip("/"), current_app.config)
    if wants_html():
        return answer(doc, "api.html")
    resp = Response(json.dumps(doc, ensure_ascii=False), mimetype=OPENAPI.split(";")[0])
    resp.headers["Content-Type"] = OPENAPI
    resp.vary.add("Accept")
    return resp


def collection_doc(collection: ogc.Collection) -> dict[str, Any]:
    doc = ogc.describe(collection, current_app.config)
    cid = collection.id
    doc["links"] = [
        *self_links("ogc.collection", collection_id=cid),
        link(url("ogc.items", collection_id=cid, f="json"), "items", GEOJSON,
             "the features as GeoJSON"),
        link(url("ogc.items", collection_id=cid, f="html"), "items", HTML,
             "the features as HTML"),
        link(url("ogc.queryables", collection_id=cid, f="json"), REL_QUERYABLES, SCHEMA,
             "the properties that can be filtered on"),
        *extra_links(collection),
    ]
    return doc


@bp.get("/collections")
def collections():
    body = {"links": self_links("ogc.collections"),
            "collections": [collection_doc(c) for c in ogc.COLLECTIONS.values()]}
    return answer(body, "collections.html")


@bp.get("/collections/<collection_id>")
def collection(collection_id: str):
    return answer(collection_doc(ogc.get_collection(collection_id)), "collection.html")


@bp.get("/collections/<collection_id>/queryables")
def queryables(collection_id: str):
    found = ogc.get_collection(collection_id)
    body = ogc.queryables(found, url("ogc.queryables", collection_id=collection_id))
    return answer(body, "queryables.html", mimetype=SCHEMA, collection=found)


def page_url(collection_id: str, cursor: str | None, fmt: str | None = None) -> str:
    """This items request's URL with another cursor (and format): filters kept."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("cursor", "f")]
    if cursor:
        args.append(("cursor", cursor))
    if fmt:
        args.append(("f", fmt))
    from urllib.parse import urlencode

    return url("ogc.items", collection_id=collection_id) + (
        "?" + urlencode(args) if args else "")


@bp.get("/collections/<collection_id>/items")
def items(collection_id: str):
    found = ogc.get_collection(collection_id)
    query = ogc.parse_query(found, request.args, current_app.config["OGC_MAX_LIMIT"])
    html = wants_html()
    with db.engine().connect() as conn:
        page = ogc.items(conn, query, current_app.config["OGC_COUNT_TTL_S"])
    features = [ogc.reproject(f, query.crs) for f in page.features]
    fmt = "html" if html else "json"
    links = [link(page_url(collection_id, request.args.get("cursor"), "json"),
                  "self" if not html else "alternate", GEOJSON, "this page as GeoJSON"),
             link(page_url(collection_id, request.args.get("cursor"), "html"),
                  "self" if html else "alternate", HTML, "this page as HTML"),
             link(url("ogc.collection", collection_id=collection_id, f=fmt), "collection",
                  HTML if html else JSON, "the collection")]
    if page.next:
        links.append(link(page_url(collection_id, page.next, fmt), "next",
                          HTML if html else GEOJSON, "the next page"))
    if page.prev:
        links.append(link(page_url(collection_id, page.prev, fmt), "prev",
                          HTML if html else GEOJSON, "the previous page"))
    members = {"numberMatched": page.matched, "numberReturned": len(features),
               "timeStamp": datetime.now(UTC).isoformat(timespec="seconds")
               .replace("+00:00", "Z"), "links": links}
    if html:
        resp = answer({"features": [json.loads(f) for f in features], **members},
                      "items.html", collection=found,
                      map_settings=map_settings(page.features))
    else:
        resp = Response(ogc.collection_json(features, members), mimetype=GEOJSON)
        resp.vary.add("Accept")
    resp.headers["Content-Crs"] = f"<{query.crs}>"
    return resp


@bp.get("/collections/<collection_id>/items/<feature_id>")
def item(collection_id: str, feature_id: str):
    found = ogc.get_collection(collection_id)
    for name in request.args:
        if name not in ("f", "crs"):
            raise BadRequest(f"unknown query parameter {name!r}; a feature takes f and crs",
                             param=name)
    crs = ogc.check_crs(request.args.get("crs"), "crs")
    with db.engine().connect() as conn:
        text = ogc.item(conn, found, feature_id)
    feature = json.loads(ogc.reproject(text, crs))
    feature["links"] = [
        *self_links("ogc.item", GEOJSON, collection_id=collection_id, feature_id=feature_id),
        link(url("ogc.collection", collection_id=collection_id, f="json"), "collection", JSON,
             "the collection")]
    if wants_html():
        resp = answer(feature, "item.html", collection=found,
                      map_settings=map_settings([text]))
    else:
        resp = Response(json.dumps(feature, ensure_ascii=False), mimetype=GEOJSON)
        resp.vary.add("Accept")
    resp.headers["Content-Crs"] = f"<{crs}>"
    return resp


def map_settings(features: list[str]) -> dict[str, Any]:
    """What web/static/vm/ogc.js needs to draw these (CRS84) features on a small map."""
    points = []
    for text in features:
        f = json.loads(text)
        geometry = f.get("geometry") or {}
        if geometry.get("type") == "Point":
            lon, lat = geometry["coordinates"][:2]
            points.append({"id": str(f.get("id")), "lon": lon, "lat": lat,
                           "cat": (f.get("properties") or {}).get("category")})
    return {"points": points, "tiles": config.tiles(current_app.config)}
