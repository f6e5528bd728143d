"""The JSON/GeoJSON API: venues, nearest, categories, health."""

from __future__ import annotations

import errno
import itertools
import math
import os
import tempfile
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from sqlalchemy import text
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import wrap_file

from .. import config, db, exchange, venues
from ..errors import BadRequest
from ..storage import media_store

bp = Blueprint("api", __name__)

GEOJSON = "application/geo+json"


# The public read-only endpoints that other sites' scripts may call (CORS). Nothing that
# takes a token or writes is here, and credentials are never allowed: a cross-site request
# can read only what anyone can.
PUBLIC = frozenset({"api.venue_list", "api.venue_detail", "api.nearest", "api.category_list",
                    "api.venue_search", "clips.venue_clips", "pages.map_venues",
                    # public works (a private one answers 404 without a token), campaigns,
                    # activities and information pages
                    "works.campaigns", "works.campaign", "works.works", "works.work",
                    "works.map_works", "activities.listing", "activities.detail",
                    "activities.venue_activities", "info.listing"})
# Blueprints all of whose endpoints are public reads (OGC API - Features and its vector
# tiles), under these paths.
PUBLIC_BLUEPRINTS = frozenset({"ogc", "tiles"})
CORS_PATHS = ("/api/", "/ogc")
PREFLIGHT = {"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
             "Access-Control-Allow-Headers": "Accept, Accept-Language, If-None-Match",
             "Access-Control-Max-Age": "86400"}


@bp.after_app_request
def cors(response: Response) -> Response:
    """``Access-Control-Allow-Origin: *`` on public GETs under /api/ and /ogc (features and
    tiles), and their preflights: the one place CORS is written."""
    if not request.path.startswith(CORS_PATHS) or "Authorization" in request.headers:
        return response
    try:
        endpoint, _ = current_app.url_map.bind_to_environ(request.environ).match(method="GET")
    except HTTPException:
        return response
    public = endpoint in PUBLIC or endpoint.split(".")[0] in PUBLIC_BLUEPRINTS
    if not public or request.method not in ("GET", "HEAD", "OPTIONS"):
        return response
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = ("Content-Disposition, Content-Crs, "
                                                         "ETag")
    if request.method == "OPTIONS":
        response.status_code = 204
        response.set_data(b"")
        response.headers.update(PREFLIGHT)
    return response


def number(name: str, *, required: bool = False, default: float | None = None) -> float | None:
    """A finite float query parameter, or BadRequest naming it."""
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        if required:
            raise BadRequest(f"{name} is required", param=name)
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number, got {raw!r}", param=name) from None
    if not math.isfinite(value):
        raise BadRequest(f"{name} must be a finite number, got {raw!r}", param=name)
    return value


def integer(name: str, default: int) -> int:
    """An integer query parameter, or BadRequest naming it."""
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, got {raw!r}", param=name) from None


def datum() -> str:
    """The datum of the request's coordinates: ``crs=wgs84`` (default) or ``crs=gcj02``."""
    value = request.args.get("crs", "wgs84").lower()
    if value not in ("wgs84", "gcj02"):
        raise BadRequest(f"crs must be wgs84 or gcj02, got {value!r}", param="crs")
    return value


def geojson(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype=GEOJSON)


@bp.get("/api/nearest")
def nearest():
    # The engine, not a session: one autocommit statement, nothing to open or close.
    features = venues.nearest(
        db.engine(), number("lon", required=True), number("lat", required=True),
        k=integer("k", 5), category=request.args.getlist("category"),
        max_distance_m=number("max_distance_m"), datum=datum())
    return geojson(venues.feature_collection(features))


@bp.get("/api/venues")
def venue_list():
    fmt = request.args.get("f")
    if fmt is not None and fmt not in exchange.FORMATS:
        raise BadRequest(f"f must be one of {', '.join(exchange.FORMATS)}, got {fmt!r}",
                         param="f")
    bbox = request.args.get("bbox")
    box = config.parse_bbox(bbox) if bbox else None
    if datum() == "gcj02" and box is not None:
        from ..geo import gcj02_to_wgs84

        box = (*gcj02_to_wgs84(box[0], box[1]), *gcj02_to_wgs84(box[2], box[3]))
    cats = venues.check_categories(request.args.getlist("category"))
    q = request.args.get("q")
    # Checked here, before the 200 and the first bytes go out.
    if q is not None and (len(q) > 100 or any(ord(c) < 32 for c in q)):
        raise BadRequest("q must be at most 100 characters, without control characters",
                         param="q")
    engine = db.engine()
    licence = current_app.config.get("DATA_LICENCE")
    if fmt not in (None, "geojson"):
        with engine.connect() as conn:
            return download(conn, fmt, licence, category=cats, bbox=box, q=q)

    def stream():
        # A connection of its own, held only while the response streams.
        with engine.connect() as conn:
            metadata = venues.dictionary(conn, licence)
            yield from exchange.collection_chunks(
                venues.iter_features(conn, category=cats, bbox=box, q=q), metadata=metadata)

    response = Response(stream_with_context(started(stream())), mimetype=GEOJSON)
    if fmt is not None:
        response.headers["Content-Disposition"] = f"attachment; filename={DOWNLOAD}.geojson"
    return response


DOWNLOAD = "voicemap-venues"
MIMETYPES = {"gpkg": "application/geopackage+sqlite3", "csv": "text/csv",
             "shp": "application/zip"}


def download(conn, fmt: str, licence: str | None, **filters) -> Response:
    """The venues written to a temporary file (GeoPackage and Shapefile through GDAL, in
    batches), then streamed from it: the registry is never held in memory.

    The file is unlinked as soon as it is open, so nothing is left behind however the
    response ends.
    """
    with tempfile.TemporaryDirectory(prefix="voicemap-download-") as tmp:
        path = exchange.export_file(venues.iter_features(conn, **filters), fmt, tmp,
                                    venues.dictionary(conn, licence), name=DOWNLOAD)
        fh = path.open("rb")
        size = os.fstat(fh.fileno()).st_size
    response = Response(wrap_file(request.environ, fh), mimetype=MIMETYPES[fmt],
                        direct_passthrough=True)
    response.headers["Content-Length"] = str(size)
    response.headers["Content-Disposition"] = f"attachment; filename={path.name}"
    return response


def started(chunks: Iterator[str]) -> Iterator[str]:
    """The stream with its first chunk already made: a database that is down fails here, in
    the view, as a 503 JSON error, not after a 200 and half a body."""
    first = next(chunks, None)
    if first is None:
        return iter(())
    return itertools.chain([first], chunks)


@bp.get("/api/search")
def venue_search():
    """Venues by Chinese or English name or toneless pinyin (``q``), best first; the map's
    search box. ``limit`` 1-50 (10). Coordinates WGS-84."""
    q = venues.check_query(request.args.get("q"))
    limit = integer("limit", 10)
    if not 1 <= limit <= venues.SEARCH_MAX:
        raise BadRequest(f"limit must be between 1 and {venues.SEARCH_MAX}, got {limit}",
                         param="limit")
    with db.engine().connect() as conn:
        found = venues.search(conn, q, limit)
    response = jsonify(q=q, venues=found)
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@bp.get("/api/venues/<venue_id>")
def venue_detail(venue_id: str):
    return geojson(venues.get_feature(db.get_session(), venue_id))


@bp.get("/api/categories")
def category_list():
    return jsonify(categories=venues.category_counts(db.get_session()))


@bp.get("/api/version")
def version():
    # Touches no database: the benchmarks' yardstick for the server's own overhead.
    from ..version import __version__

    return jsonify(name="voicemap", version=__version__)


@bp.get("/healthz")
def healthz():
    """Readiness: the database answers and the media store takes a write."""
    checks = {}
    try:
        db.get_session().execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # the point is to answer, whatever the failure
        current_app.logger.warning("health check: database: %s", exc)
        checks["database"] = "unreachable"
    try:
        media_store().probe()
        checks["media"] = "ok"
    except OSError as exc:
        current_app.logger.warning("health check: media store: %s", exc)
        checks["media"] = "full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "unwritable"
    if all(v == "ok" for v in checks.values()):
        return jsonify(status="ok", **checks)
    failed = ", ".join(f"{k} {v}" for k, v in checks.items() if v != "ok")
    response = jsonify(status="unavailable", error=failed, code="unavailable", **checks)
    response.headers["Retry-After"] = "5"
    response.headers["Cache-Control"] = "no-store"
    return response, 503
