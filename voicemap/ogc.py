"""OGC API - Features: the collections served, and items queries evaluated in the database.

A query is parsed from the request's parameters (``limit``, ``bbox`` and ``bbox-crs``,
queryables as parameters, CQL2 ``filter`` in text or JSON, ``sortby``, the paging
``cursor``, output ``crs``) into SQL with bound parameters: the same SQL on PostGIS and
SpatiaLite except the few terms the backend modules write (``index_box_sql``,
``spatial_sql``, ``like_sql``). CQL2 is parsed by pygeofilter; the SQL is emitted here from
its syntax tree, one node at a time, so that only what the database can index and evaluate
on both backends is accepted. Paging is a keyset cursor on (sort keys, id), so the
thousandth page costs what the first does.

Coordinates are stored in WGS-84 with longitude first (CRS84); answers in EPSG:4326 list
latitude first, as that CRS defines, and EPSG:3857 is Web Mercator in metres.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType
from typing import Any

from sqlalchemy import Connection, text

from . import activities, backends, categories, exchange, venues, works
from .errors import BadRequest, NotFound

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
CRS_LIST = (CRS84, EPSG4326, EPSG3857)
DEFAULT_LIMIT = 10

_SPEC = "http://www.opengis.net/spec/"
# The conformance classes /ogc/conformance declares. A module-level list so that other parts
# of the service (the vector tiles blueprint) append their own classes when they load.
CONFORMANCE: list[str] = [
    _SPEC + "ogcapi-features-1/1.0/conf/core",
    _SPEC + "ogcapi-features-1/1.0/conf/geojson",
    _SPEC + "ogcapi-features-1/1.0/conf/html",
    _SPEC + "ogcapi-features-1/1.0/conf/oas30",
    _SPEC + "ogcapi-features-2/1.0/conf/crs",
    _SPEC + "ogcapi-features-3/1.0/conf/queryables",
    _SPEC + "ogcapi-features-3/1.0/conf/queryables-query-parameters",
    _SPEC + "ogcapi-features-3/1.0/conf/filter",
    _SPEC + "ogcapi-features-3/1.0/conf/features-filter",
    _SPEC + "cql2/1.0/conf/cql2-text",
    _SPEC + "cql2/1.0/conf/cql2-json",
    _SPEC + "cql2/1.0/conf/basic-cql2",
    _SPEC + "cql2/1.0/conf/basic-spatial-functions",
    _SPEC + "cql2/1.0/conf/basic-spatial-functions-plus-points",
    _SPEC + "cql2/1.0/conf/spatial-functions",
    # sortby: the draft Features Part 8 class, and the Records one that pygeoapi and
    # clients built on it look for (the same parameter).
    _SPEC + "ogcapi-features-8/1.0/conf/sorting",
    _SPEC + "ogcapi-records-1/1.0/conf/sorting",
]

# The parameters every items request may carry; any other that is not a queryable is a 400.
ITEM_PARAMS = frozenset({"f", "limit", "bbox", "bbox-crs", "crs", "filter", "filter-lang",
                         "filter-crs", "sortby", "cursor"})
FILTER_LANGS = ("cql2-text", "cql2-json")


# --- the collections ---------------------------------------------------------------------


@dataclass(frozen=True)
class Property:
    """One public property of a collection's features: a queryable and sortable field.

    ``sql`` is its SQL over the collection's table aliased ``v``.
    """

    name: str
    type: str  # text, integer, boolean or real (exchange.Field's types)
    description: str
    sql: str = ""
    enum: tuple[str, ...] = ()
    unit: str = ""

    @property
    def expr(self) -> str:
        return self.sql or f"v.{self.name}"


@dataclass(frozen=True)
class Collection:
    """A public geographic dataset served as an OGC API - Features collection.

    Declarative: a table, its key and geometry columns, the properties anyone may see (never
    a private one), the SQL condition that keeps rows public, and how the database writes
    one row as GeoJSON Feature text (``feature(backend)``, over alias ``v``).
    """

    id: str
    title: str
    description: str
    table: str
    properties: tuple[Property, ...]
    feature: Callable[[ModuleType], str]
    key: str = "id"
    key_type: str = "text"  # or integer: how the id sorts, and what a featureId must be
    geometry: str = "geom"
    # Whether the table has a spatial index under the backends' naming (``idx_<table>_<geom>``)
    # for boxes to ask first; without one a box is only the exact test (small tables, or a
    # derived table whose underlying index PostGIS finds by itself).
    spatial_index: bool = True
    geometry_type: str = "Point"
    public: str = "true"  # SQL over alias v: rows that are public
    keywords: tuple[str, ...] = ()
    # Extra links of the collection (and of the landing page): dicts with rel, type, title
    # and ``href`` relative to /ogc (e.g. "collections/venues/tiles").
    links: tuple[dict[str, str], ...] = ()
    # The area every feature lies in (CRS84), from the app's settings.
    extent: Callable[[dict[str, Any]], tuple[float, float, float, float]] = (
        lambda config: tuple(config["SERVICE_AREA"]))

    def prop(self, name: str) -> Property | None:
        for p in self.properties:
            if p.name == name:
                return p
        return None


COLLECTIONS: dict[str, Collection] = {}


def register(collection: Collection) -> Collection:
    """Serve ``collection`` under /ogc/collections/<id> (one line per dataset)."""
    COLLECTIONS[collection.id] = collection
    return collection


def get_collection(collection_id: str) -> Collection:
    """The collection with this id, or NotFound."""
    found = COLLECTIONS.get(collection_id)
    if found is None:
        raise NotFound(f"no collection {collection_id!r}; the collections are "
                       f"{', '.join(COLLECTIONS)}", param="collectionId")
    return found


def _venue_properties() -> tuple[Property, ...]:
    """The venues' public fields, from the exports' data dictionary (``exchange.FIELDS``)."""
    sql = dict(venues.EXTRA)
    out = []
    for f in exchange.FIELDS:
        enum = tuple(categories.IDS) if f.name == "category" else ()
        out.append(Property(f.name, f.type, f.meaning, sql=sql.get(f.name, ""), enum=enum,
                            unit=f.unit))
    return tuple(out)


VENUES = register(Collection(
    id="venues",
    title="Child-friendly venues of Beijing",
    description="Museums, exhibition halls, libraries, stadiums, science sites, performing-"
                "arts centres, parks, green spaces and playgrounds of Beijing's child-"
                "friendly-city programme, with access facts and the number of published "
                "child-narrated voice guides. WGS-84.",
    table="venues",
    properties=_venue_properties(),
    feature=lambda backend: backend.feature_sql("v", venues.EXTRA),
    keywords=("child-friendly city", "Beijing", "venues", *categories.IDS),
    links=({"rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
            "type": "application/json", "title": "Vector tiles of the venues",
            "href": "collections/venues/tiles"},),
))


def _feature(properties: tuple[Property, ...],
             extra: Callable[[ModuleType], tuple[tuple[str, str, str], ...]] = lambda b: ()
             ) -> Callable[[ModuleType], str]:
    """How the database writes a row as a Feature: its properties (each ``expr`` over
    alias ``v``), then ``extra(backend)``'s (key, SQL, type) for values whose SQL differs
    between the backends (times on Beijing's clock)."""
    def sql(backend: ModuleType) -> str:
        pairs = tuple((p.name, p.expr, p.type) for p in properties)
        return backend.json_feature_sql("v.id", "v.geom", pairs + tuple(extra(backend)))
    return sql


_MEDIA = "'/media/works/' || v.id || "
# A work's public fields: exactly those of GET /api/works/<id> (``works.to_dict``) but the
# geometry, which is the feature's. Never the guardian's name or contact, the district,
# the review state or the consent record.
_WORK_PROPERTIES = (
    Property("id", "text", "the work's number"),
    Property("campaign", "text", "the campaign the work was made for", sql="v.campaign_id"),
    Property("kind", "text", "painting, photo, writing or song", enum=works.KINDS),
    Property("title", "text", "the work's title, as the child gave it"),
    Property("narrator_name", "text", "the child's first name or pen name (never a full "
             "name)"),
    Property("narrator_age", "integer", "the child's age", unit="year"),
    Property("age_group", "text", "the campaign's age group of the child (e.g. 7-9)"),
    Property("story", "text", "the writing itself, or a few words about the work (its text "
             "alternative)"),
    Property("venue_id", "text", "the venue the work is about, if any (its point is the "
             "venue's; otherwise the point is the centre of a ~500 m grid cell)"),
    Property("award", "text", "the award given in judging, if any"),
    Property("synthetic", "boolean", "a machine-made sample work (demo), never a child's"),
    Property("duration_ms", "integer", "a song's length", unit="ms"),
    Property("width", "integer", "the display image's width", sql="v.display_width",
             unit="pixel"),
    Property("height", "integer", "the display image's height", sql="v.display_height",
             unit="pixel"),
    Property("thumb_url", "text", "the thumbnail (~400 px) under the site's address",
             sql=f"(CASE WHEN v.thumb_sha256 IS NOT NULL THEN {_MEDIA}'/thumb' END)"),
    Property("display_url", "text", "the display image (at most 1600 px)",
             sql=f"(CASE WHEN v.display_sha256 IS NOT NULL THEN {_MEDIA}'/display' END)"),
    Property("audio_url", "text", "a song's MP3",
             sql=f"(CASE WHEN v.audio_sha256 IS NOT NULL THEN {_MEDIA}'/song.mp3' END)"),
    Property("page_url", "text", "the work's page on the site", sql="'/works/' || v.id"),
)

WORKS = register(Collection(
    id="works",
    title="Children's works pinned to places (\"Me and my city\")",
    description="Paintings, photos, writing and songs by Beijing's children, approved for "
                "the public by an administrator with their guardian's consent, where they "
                "are pinned to a place: a venue's point, or the centre of the ~500 m grid "
                "cell holding the point given (never a home's exact place). First names "
                "only; no guardian data. WGS-84.",
    table="works",
    properties=_WORK_PROPERTIES,
    feature=_feature(_WORK_PROPERTIES),
    # works.public_clause() as SQL, and a point: a work with none is not a feature.
    public="v.status = 'approved' AND v.consent_public IS true AND v.flagged IS false "
           "AND v.geom IS NOT NULL",
    spatial_index=False,  # a few thousand works at most; the model declares no index
    keywords=("child-friendly city", "Beijing", "children's works", *works.KINDS),
))

# One row per activity, at its venue's point (the venue's names and category with it).
_ACTIVITY_ROWS = (
    "(SELECT a.id AS id, a.venue_id AS venue_id, w.name_zh AS venue_name_zh, "
    "w.name_en AS venue_name_en, w.category AS category, a.title_zh AS title_zh, "
    "a.title_en AS title_en, a.description_zh AS description_zh, "
    "a.description_en AS description_en, a.starts_at AS starts_at, a.ends_at AS ends_at, "
    "a.last_ends_at AS last_ends_at, a.rrule AS rrule, a.min_age AS min_age, "
    "a.max_age AS max_age, a.price AS price, a.booking_required AS booking_required, "
    "a.booking_url AS booking_url, a.accessibility AS accessibility, a.status AS status, "
    "a.updated_at AS updated_at, w.geom AS geom "
    "FROM activities a JOIN venues w ON w.id = a.venue_id)")

_ACTIVITY_PROPERTIES = (
    Property("id", "integer", "the activity's number (as in /api/activities/<id>)"),
    Property("venue_id", "text", "the venue where it happens"),
    Property("venue_name_zh", "text", "the venue's Chinese name"),
    Property("venue_name_en", "text", "the venue's English name"),
    Property("category", "text", "the venue's category", enum=tuple(categories.IDS)),
    Property("title_zh", "text", "the activity's Chinese title"),
    Property("title_en", "text", "the activity's English title"),
    Property("description_zh", "text", "the Chinese description"),
    Property("description_en", "text", "the English description"),
    Property("rrule", "text", "RFC 5545 weekly rule (UNTIL in UTC) of a series; null for "
             "a single occurrence"),
    Property("min_age", "integer", "the youngest age it suits", unit="year"),
    Property("max_age", "integer", "the oldest age it suits", unit="year"),
    Property("price", "real", "price in yuan; 0 is free", unit="CNY"),
    Property("free", "boolean", "price is 0", sql="(v.price = 0)"),
    Property("booking_required", "boolean", "booking is needed"),
    Property("booking_url", "text", "where to book"),
    Property("accessibility", "text", "access notes"),
    Property("status", "text", "scheduled, or cancelled (the whole activity; a cancelled "
             "occurrence is in /api/activities/<id>)", enum=activities.STATUSES),
)


def _activity_times(backend: ModuleType) -> tuple[tuple[str, str, str], ...]:
    # As the activities API writes them (ISO 8601, Beijing's offset, to the second). Not
    # queryables: SQLite keeps times as text without an offset, so comparisons with a
    # literal would not agree between the backends.
    t = backend.local_time_sql
    return (("start", t("v.starts_at"), "text"), ("end", t("v.ends_at"), "text"),
            ("last_end", t("v.last_ends_at"), "text"),
            ("updated_at", t("v.updated_at"), "text"))


ACTIVITIES = register(Collection(
    id="activities",
    title="Activities at child-friendly venues",
    description="Story hours, workshops, guided walks ... at the venues: one feature per "
                "activity at its venue's point, with its first occurrence (start, end on "
                "Beijing's clock, +08:00), its weekly rule and the end of its last "
                "occurrence (last_end). Occurrences one by one are in /api/activities and "
                "the iCalendar feeds. WGS-84.",
    table=_ACTIVITY_ROWS,
    properties=_ACTIVITY_PROPERTIES,
    feature=_feature(_ACTIVITY_PROPERTIES, _activity_times),
    key_type="integer",
    spatial_index=False,  # a derived table: PostGIS uses the venues' index by itself
    keywords=("child-friendly city", "Beijing", "activities", "events"),
))


# --- coordinate reference systems --------------------------------------------------------


def check_crs(value: str | None, param: str) -> str:
    """A CRS URI this service supports (CRS84 when absent), or BadRequest naming it."""
    if value is None or value == "":
        return CRS84
    uri = value.strip()
    if uri.startswith("[") and uri.endswith("]"):  # a safe CURIE, e.g. [EPSG:4326]
        curie = uri[1:-1]
        uri = {"OGC:CRS84": CRS84, "EPSG:4326": EPSG4326, "EPSG:3857": EPSG3857}.get(curie, uri)
    if uri not in CRS_LIST:
        raise BadRequest(f"{param} {value!r} is not supported; use one of "
                         f"{', '.join(CRS_LIST)}", param=param)
    return uri


@lru_cache(maxsize=4)
def _transformer(source: str, target: str):
    from pyproj import Transformer

    # always_xy: (lon, lat) in and out; EPSG:4326's latitude-first order is applied apart.
    epsg = {CRS84: "OGC:CRS84", EPSG4326: "OGC:CRS84", EPSG3857: "EPSG:3857"}
    return Transformer.from_crs(epsg[source], epsg[target], always_xy=True)


def to_crs84(x: float, y: float, crs: str) -> tuple[float, float]:
    """A position given in ``crs`` (in its own axis order) as CRS84 (lon, lat)."""
    if crs == CRS84:
        return x, y
    if crs == EPSG4326:
        return y, x
    lon, lat = _transformer(crs, CRS84).transform(x, y)
    return lon, lat


def _from_crs84(coords: Any, crs: str) -> Any:
    """GeoJSON coordinates (nested lists) in CRS84 written in ``crs``."""
    if isinstance(coords[0], list | tuple):
        return [_from_crs84(c, crs) for c in coords]
    lon, lat = coords[0], coords[1]
    if crs == EPSG4326:
        return [lat, lon]
    x, y = _transformer(CRS84, crs).transform(lon, lat)
    return [round(x, 3), round(y, 3)]


def _to_crs84_geometry(geometry: dict[str, Any], crs: str) -> dict[str, Any]:
    def convert(coords: Any) -> Any:
        if isinstance(coords[0], list | tuple):
            return [convert(c) for c in coords]
        return list(to_crs84(coords[0], coords[1], crs))

    if geometry.get("type") == "GeometryCollection":
        return {**geometry, "geometries": [_to_crs84_geometry(g, crs)
                                           for g in geometry.get("geometries", [])]}
    return {**geometry, "coordinates": convert(geometry["coordinates"])}


def reproject(feature_text: str, crs: str) -> str:
    """A CRS84 Feature text with its geometry written in ``crs``."""
    if crs == CRS84:
        return feature_text
    feature = json.loads(feature_text)
    geometry = feature.get("geometry")
    if geometry and geometry.get("coordinates"):
        geometry["coordinates"] = _from_crs84(geometry["coordinates"], crs)
    return json.dumps(feature, ensure_ascii=False, separators=(",", ":"))


def parse_bbox(value: str, crs: str) -> tuple[float, float, float, float]:
    """An OGC ``bbox`` (4 numbers, or 6 with heights) in ``crs`` as a CRS84 box."""
    parts = value.split(",")
    if len(parts) not in (4, 6):
        raise BadRequest("bbox must be four numbers (lower left corner, upper right corner) "
                         "or six with heights", param="bbox")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise BadRequest(f"bbox must be numbers, got {value!r}", param="bbox") from None
    if not all(math.isfinite(n) for n in nums):
        raise BadRequest("bbox must be finite numbers", param="bbox")
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    (minx, miny), (maxx, maxy) = (to_crs84(nums[0], nums[1], crs),
                                  to_crs84(nums[2], nums[3], crs))
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90
            and -90 <= maxy <= 90):
        raise BadRequest("bbox lies outside the range of longitude and latitude "
                         f"(in {crs})", param="bbox")
    if miny > maxy:
        raise BadRequest("bbox's lower corner is above its upper corner", param="bbox")
    if minx > maxx:
        raise BadRequest("bbox crossing the antimeridian is not supported (minimum longitude "
                         "greater than maximum)", param="bbox")
    return minx, miny, maxx, maxy


# --- the query ---------------------------------------------------------------------------


@dataclass
class SortKey:
    """One ORDER BY term; the feature's id is always the last."""

    expr: str
    type: str
    desc: bool = False
    nullable: bool = True


@dataclass
class Query:
    """An items request, checked: everything the SQL needs."""

    collection: Collection
    limit: int = DEFAULT_LIMIT
    bbox: tuple[float, float, float, float] | None = None
    filter: Any = None  # a pygeofilter syntax tree
    filter_text: str = ""  # as given, with its language: what a cursor is checked against
    filter_crs: str = CRS84
    equals: dict[str, list[Any]] = field(default_factory=dict)
    sortby: list[tuple[str, bool]] = field(default_factory=list)  # (property, descending)
    crs: str = CRS84
    cursor: dict[str, Any] | None = None

    def fingerprint(self) -> str:
        """What a cursor must belong to: the same collection, filters and order."""
        raw = json.dumps([self.collection.id, self.bbox, self.filter_text, self.filter_crs,
                          self.equals, self.sortby], default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:12]

    def keys(self) -> list[SortKey]:
        out = []
        for name, desc in self.sortby:
            prop = self.collection.prop(name)
            out.append(SortKey(prop.expr, prop.type, desc))
        out.append(SortKey(f"v.{self.collection.key}", self.collection.key_type, False,
                           nullable=False))
        return out


def parse_query(collection: Collection, args, max_limit: int) -> Query:
    """Check an items request's parameters (a werkzeug MultiDict) into a Query.

    :raises BadRequest: an unknown parameter, or a value that is malformed or out of range,
        named in ``param``.
    """
    for name in args:
        if name not in ITEM_PARAMS and collection.prop(name) is None:
            raise BadRequest(f"unknown query parameter {name!r}; this collection takes "
                             f"{', '.join(sorted(ITEM_PARAMS))} and its queryables "
                             f"({', '.join(p.name for p in collection.properties)})",
                             param=name)
    q = Query(collection)
    raw = args.get("limit")
    if raw is not None:
        try:
            limit = int(raw)
        except ValueError:
            raise BadRequest(f"limit must be a whole number, got {raw!r}",
                             param="limit") from None
        if limit < 1:
            raise BadRequest("limit must be at least 1", param="limit")
        q.limit = min(limit, max_limit)  # larger asks get the maximum (Part 1, 7.15.3)
    q.crs = check_crs(args.get("crs"), "crs")
    bbox_crs = check_crs(args.get("bbox-crs"), "bbox-crs")
    if args.get("bbox"):
        q.bbox = parse_bbox(args["bbox"], bbox_crs)
    q.filter_crs = check_crs(args.get("filter-crs"), "filter-crs")
    if args.get("filter"):
        lang = args.get("filter-lang") or "cql2-text"
        q.filter = parse_filter(args["filter"], lang)
        q.filter_text = f"{lang}:{args['filter']}"
    elif "filter-lang" in args and args["filter-lang"] not in FILTER_LANGS:
        raise BadRequest(f"filter-lang must be one of {', '.join(FILTER_LANGS)}",
                         param="filter-lang")
    for prop in collection.properties:
        values = args.getlist(prop.name)
        if values:
            q.equals[prop.name] = [_coerce(prop, v, prop.name) for v in values]
    q.sortby = parse_sortby(collection, args.get("sortby"))
    if args.get("cursor"):
        q.cursor = decode_cursor(args["cursor"], q)
    return q


def _coerce(prop: Property, raw: str, param: str) -> Any:
    """A query parameter's text as a value of the property's type."""
    if prop.type == "integer":
        try:
            return int(raw)
        except ValueError:
            raise BadRequest(f"{param} must be a whole number, got {raw!r}",
                             param=param) from None
    if prop.type == "real":
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise BadRequest(f"{param} must be a number, got {raw!r}", param=param)
        return value
    if prop.type == "boolean":
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise BadRequest(f"{param} must be true or false, got {raw!r}", param=param)
    if prop.enum and raw not in prop.enum:
        raise BadRequest(f"{param} must be one of {', '.join(prop.enum)}, got {raw!r}",
                         param=param)
    return raw


def parse_sortby(collection: Collection, raw: str | None) -> list[tuple[str, bool]]:
    """``sortby=name_en,-min_age`` as (property, descending) pairs."""
    out: list[tuple[str, bool]] = []
    for part in (raw or "").split(","):
        part = part.strip()
        if not part:
            continue
        desc = part.startswith("-")
        name = part.lstrip("+-").strip()
        prop = collection.prop(name)
        if prop is None:
            raise BadRequest(f"cannot sort by {name!r}: the sortable properties are "
                             f"{', '.join(p.name for p in collection.properties)}",
                             param="sortby")
        if name == collection.key:
            if desc:
                raise BadRequest("sorting by id descending is not supported", param="sortby")
            continue  # the id is always the last key
        if any(n == name for n, _ in out):
            raise BadRequest(f"sortby names {name!r} twice", param="sortby")
        out.append((name, desc))
    return out


def parse_filter(raw: str, lang: str) -> Any:
    """A CQL2 filter (text or JSON) as pygeofilter's syntax tree."""
    if lang not in FILTER_LANGS:
        raise BadRequest(f"filter-lang must be one of {', '.join(FILTER_LANGS)}, got {lang!r}",
                         param="filter-lang")
    if len(raw) > 20_000:
        raise BadRequest("filter is longer than 20,000 characters", param="filter")
    try:
        if lang == "cql2-json":
            from pygeofilter.parsers.cql2_json import parse

            try:
                document = json.loads(raw)
            except ValueError as exc:
                raise BadRequest(f"filter is not JSON: {exc}", param="filter") from None
            from .cql2 import bbox_to_polygon

            return parse(bbox_to_polygon(document))
        from pygeofilter.parsers.cql2_text import parse

        return parse(raw)
    except BadRequest:
        raise
    except Exception as exc:  # lark's errors and pygeofilter's own: all mean bad input
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadRequest(f"filter is not valid {lang}: {message[:300]}",
                         param="filter") from None


# --- cursors -----------------------------------------------------------------------------


def encode_cursor(values: list[Any], matched: int | None, query: Query, back: bool = False
                  ) -> str:
    """An opaque token for the row after (or, ``back``, before) the one with these keys."""
    body = {"k": values, "q": query.fingerprint()}
    if matched is not None:
        body["n"] = matched
    if back:
        body["b"] = 1
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, query: Query) -> dict[str, Any]:
    """The cursor's contents, checked against the query it is used with."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
    except ValueError:
        body = None
    keys = query.keys()
    if (not isinstance(body, dict) or not isinstance(body.get("k"), list)
            or len(body["k"]) != len(keys)):
        raise BadRequest("cursor is not one this service gave out (follow the next and prev "
                         "links as given)", param="cursor")
    if body.get("q") != query.fingerprint():
        raise BadRequest("cursor belongs to another query: keep the filters, bbox and sortby "
                         "of the page it came from", param="cursor")
    for key, value in zip(keys, body["k"], strict=True):
        if (value is None and not key.nullable) or not _fits(key.type, value):
            raise BadRequest("cursor is damaged", param="cursor")
    matched = body.get("n")
    if matched is not None and not (isinstance(matched, int) and matched >= 0):
        raise BadRequest("cursor is damaged", param="cursor")
    return body


def _fits(kind: str, value: Any) -> bool:
    if value is None:
        return True
    if kind == "text":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool | int)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _key_value(kind: str, value: Any) -> Any:
    """A sort key's value as stored in a cursor (SQLite returns booleans as 0 and 1)."""
    if kind == "boolean" and value is not None:
        return bool(value)
    return value


# --- SQL ---------------------------------------------------------------------------------


class Sql:
    """WHERE terms and their bound parameters, named p0, p1, ..."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"


def _where(query: Query, backend: ModuleType, sql: Sql) -> list[str]:
    c = query.collection
    terms = [f"({c.public})"] if c.public != "true" else []
    if query.bbox is not None:
        terms.append(box_term(c, backend, sql, query.bbox))
    for name, values in query.equals.items():
        prop = c.prop(name)
        if len(values) == 1:
            terms.append(f"{prop.expr} = {sql.bind(values[0])}")
        else:
            terms.append(f"{prop.expr} IN ({', '.join(sql.bind(v) for v in values)})")
    if query.filter is not None:
        from .cql2 import Emitter

        terms.append(Emitter(c, backend, sql, query.filter_crs).emit(query.filter))
    return terms


def box_term(c: Collection, backend: ModuleType, sql: Sql,
             box: tuple[float, float, float, float]) -> str:
    """The features whose geometry meets ``box`` (CRS84), exactly."""
    if c.spatial_index:
        names = tuple(sql.bind(v)[1:] for v in box)
        return backend.box_sql(c.table, "v", c.geometry, names)
    minx, miny, maxx, maxy = box
    wkt = (f"POLYGON(({minx!r} {miny!r}, {maxx!r} {miny!r}, {maxx!r} {maxy!r}, "
           f"{minx!r} {maxy!r}, {minx!r} {miny!r}))")
    return backend.spatial_sql("ST_Intersects", f"v.{c.geometry}",
                               f"ST_GeomFromText({sql.bind(wkt)}, 4326)")


def _keyset(keys: list[SortKey], values: list[Any], sql: Sql) -> str:
    """Rows after the one whose keys are ``values`` in the order ``keys`` give (nulls last).

    The lexicographic comparison written out term by term, since the keys' directions
    differ and NULLs sort last whatever the direction.
    """
    alternatives = []
    for i, key in enumerate(keys):
        equal_before = []
        for prev, value in zip(keys[:i], values[:i], strict=True):
            equal_before.append(f"{prev.expr} IS NULL" if value is None
                                else f"{prev.expr} = {sql.bind(value)}")
        value = values[i]
        if value is None:
            continue  # nulls last: nothing of this key comes after a NULL
        after = f"{key.expr} {'<' if key.desc else '>'} {sql.bind(value)}"
        if key.nullable:
            after = f"({after} OR {key.expr} IS NULL)"
        alternatives.append("(" + " AND ".join([*equal_before, after]) + ")")
    return "(" + " OR ".join(alternatives) + ")" if alternatives else "false"


def _order(keys: list[SortKey]) -> str:
    return ", ".join(f"{k.expr} {'DESC' if k.desc else 'ASC'}"
                     + (" NULLS LAST" if k.nullable else "") for k in keys)


def _reversed(keys: list[SortKey]) -> list[SortKey]:
    """The same order read backwards. With nulls last both ways, the reversed order puts
    NULLs first: written as a key over ``expr IS NULL`` before the key itself."""
    out = []
    for k in keys:
        if k.nullable:
            out.append(SortKey(f"(CASE WHEN {k.expr} IS NULL THEN 1 ELSE 0 END)", "integer",
                               desc=True, nullable=False))
        out.append(SortKey(k.expr, k.type, desc=not k.desc, nullable=k.nullable))
    return out


@dataclass
class Page:
    """One page of items: Feature texts (CRS84) and the cursors around it."""

    features: list[str]
    matched: int
    next: str | None = None
    prev: str | None = None


# numberMatched of recent first pages, per database and query: (expires, count). Counting
# a filter's matches costs a pass over them (pygeoapi does the same on every page), so a
# client asking the same query again within ``count_ttl`` seconds gets the count again.
_COUNTS: dict[tuple[str, str], tuple[float, int]] = {}
_COUNTS_MAX = 4096


def _count(conn: Connection, query: Query, where: str, params: dict[str, Any],
           ttl: float) -> int:
    key = (conn.engine.url.render_as_string(hide_password=True), query.fingerprint())
    now = time.monotonic()
    cached = _COUNTS.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    c = query.collection
    n = conn.execute(text(f"SELECT count(*) FROM {c.table} v WHERE {where}"),
                     params).scalar_one()
    if ttl > 0:
        if len(_COUNTS) >= _COUNTS_MAX:
            _COUNTS.clear()
        _COUNTS[key] = (now + ttl, n)
    return n


def items(conn: Connection, query: Query, count_ttl: float = 0.0) -> Page:
    """The page of features the query asks for, in a stable order, evaluated in the database.

    Reads one row more than ``limit`` to know whether another page follows; counts the
    matches once, on the first page (or takes the count of the same query made less than
    ``count_ttl`` seconds ago in this process), and carries the count in the cursors.
    """
    backend = backends.select(conn)
    backend.begin_read(conn)
    c = query.collection
    sql = Sql()
    terms = _where(query, backend, sql)
    keys = query.keys()
    cursor = query.cursor or {}
    back = bool(cursor.get("b"))
    matched = cursor.get("n")
    if matched is None:
        matched = _count(conn, query, " AND ".join(terms) or "true", sql.params, count_ttl)
    page_terms = list(terms)
    order_keys = keys
    if cursor:
        values = [_cursor_param(k, v) for k, v in zip(keys, cursor["k"], strict=True)]
        if back:
            page_terms.append(_keyset_before(keys, values, sql))
            order_keys = _reversed(keys)
        else:
            page_terms.append(_keyset(keys, values, sql))
    where = " AND ".join(page_terms) or "true"
    key_cols = ", ".join(f"{k.expr} AS k{i}" for i, k in enumerate(keys))
    stmt = (f"SELECT {key_cols}, {c.feature(backend)} AS feature FROM {c.table} v "
            f"WHERE {where} ORDER BY {_order(order_keys)} LIMIT {int(query.limit) + 1}")
    rows = conn.execute(text(stmt), sql.params).all()
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    if back:
        rows.reverse()
    features = [row[-1] for row in rows]
    page = Page(features, matched)
    if not rows:
        return page
    first = [_key_value(k.type, v) for k, v in zip(keys, rows[0][:len(keys)], strict=True)]
    last = [_key_value(k.type, v) for k, v in zip(keys, rows[-1][:len(keys)], strict=True)]
    if (more and not back) or (back and cursor):
        page.next = encode_cursor(last, matched, query)
    if (cursor and not back) or (back and more):
        page.prev = encode_cursor(first, matched, query, back=True)
    return page


def _cursor_param(key: SortKey, value: Any) -> Any:
    if key.type == "boolean" and value is not None:
        return bool(value)
    return value


def _keyset_before(keys: list[SortKey], values: list[Any], sql: Sql) -> str:
    """Rows before the one whose keys are ``values`` (the order of ``keys``, nulls last)."""
    alternatives = []
    for i, key in enumerate(keys):
        equal_before = [f"{prev.expr} IS NULL" if value is None
                        else f"{prev.expr} = {sql.bind(value)}"
                        for prev, value in zip(keys[:i], values[:i], strict=True)]
        value = values[i]
        if value is None:  # before a NULL: every non-NULL value of this key
            before = f"{key.expr} IS NOT NULL"
        else:
            before = f"{key.expr} {'>' if key.desc else '<'} {sql.bind(value)}"
        alternatives.append("(" + " AND ".join([*equal_before, before]) + ")")
    return "(" + " OR ".join(alternatives) + ")"


def item(conn: Connection, collection: Collection, feature_id: str) -> str:
    """One feature's GeoJSON text (CRS84), or NotFound."""
    backend = backends.select(conn)
    c = collection
    key: Any = feature_id
    if c.key_type == "integer":
        if not feature_id.isascii() or not feature_id.isdigit() or len(feature_id) > 18:
            raise NotFound(f"no feature {feature_id!r} in {c.id}", param="featureId")
        key = int(feature_id)
    public = f" AND ({c.public})" if c.public != "true" else ""
    row = conn.execute(text(f"SELECT {c.feature(backend)} FROM {c.table} v "
                            f"WHERE v.{c.key} = :id{public}"), {"id": key}).first()
    if row is None:
        raise NotFound(f"no feature {feature_id!r} in {c.id}", param="featureId")
    return row[0]


# --- documents ---------------------------------------------------------------------------


def queryables(collection: Collection, url: str) -> dict[str, Any]:
    """The collection's queryables as a JSON Schema (Part 3)."""
    props: dict[str, Any] = {
        "geometry": {"$ref": "https://geojson.org/schema/Point.json",
                     "format": "geometry-point", "x-ogc-role": "primary-geometry",
                     "description": "where the feature is (WGS-84)"}
        if collection.geometry_type == "Point" else
        {"format": "geometry-any", "x-ogc-role": "primary-geometry"},
    }
    for p in collection.properties:
        schema: dict[str, Any] = {"type": {"text": "string", "real": "number"}.get(p.type, p.type),
                                  "title": p.name, "description": p.description}
        if p.enum:
            schema["enum"] = list(p.enum)
        if p.unit:
            schema["x-ogc-unit"] = p.unit
        if p.name == collection.key:
            schema["x-ogc-role"] = "id"
        props[p.name] = schema
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": url,
            "type": "object", "title": collection.title, "properties": props,
            "additionalProperties": False}


def describe(collection: Collection, config: dict[str, Any]) -> dict[str, Any]:
    """The collection's description (without links): extent, CRSs, item type."""
    return {"id": collection.id, "title": collection.title,
            "description": collection.description, "keywords": list(collection.keywords),
            "itemType": "feature",
            "extent": {"spatial": {"bbox": [list(collection.extent(config))], "crs": CRS84}},
            "crs": list(CRS_LIST), "storageCrs": CRS84}


def collection_json(features: Iterable[str], extra: dict[str, Any]) -> str:
    """A FeatureCollection text of Feature texts, then the other members (counts, links)."""
    tail = json.dumps(extra, ensure_ascii=False)[1:-1]
    return ('{"type":"FeatureCollection","features":[' + ",".join(features) + "]"
            + ("," + tail if tail else "") + "}")
