"""Vector tiles of the venues (OGC API - Tiles, WebMercatorQuad, Mapbox Vector Tiles).

The tile grid is the OGC 2D Tile Matrix Set "WebMercatorQuad" (EPSG:3857, 256-pixel tiles,
levels 0-22 served). A tile is one MVT layer, ``venues``, in tile coordinates 0-4096 with a
64-unit buffer. Each backend builds the bytes (``backends.*.venue_tile`` and
``cluster_tile``: PostGIS with ``ST_AsMVT``, SpatiaLite with the mapbox-vector-tile
encoder); this module owns the grid's arithmetic, the choice between venues and clusters,
and the metadata documents.

Thinning: a tile whose buffered area holds more than ``MAX_FEATURES`` venues is drawn as
clusters instead: the tile is cut into a 16 x 16 grid and each occupied cell becomes one
point (at the mean position of its venues) with ``cluster=true``, ``point_count`` and
``voiced_count``. So a tile never holds more than 256 clusters or ``MAX_FEATURES`` venues,
whatever the registry's size; clusters count only the venues inside the tile itself (not
its buffer), so every venue is counted in exactly one tile of a zoom level.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from . import backends, exchange
from .errors import BadRequest, NotFound

TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CRS_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
MVT = "application/vnd.mapbox-vector-tile"
LAYER = "venues"
MIN_ZOOM, MAX_ZOOM = 0, 22
STANDARD_LEVELS = 24  # WebMercatorQuad defines levels 0-24; 23 and 24 are not served
EXTENT = 4096  # tile coordinates per tile side
BUFFER = 64  # tile coordinates kept beyond each edge, so symbols are not cut at seams
MAX_FEATURES = 1000  # more venues than this in a tile: clusters instead
CLUSTER_GRID = 16  # clusters: cells per tile side (16 x 16, 256 tile units each)
CACHE_SECONDS = 60  # Cache-Control max-age of tiles of venues
CLUSTER_SECONDS = 300  # ... of cluster tiles, which carry only counts; and how long each
# worker keeps those it built

# Spherical Mercator (EPSG:3857) on the WGS-84 semi-major axis; latitudes beyond
# WebMercatorQuad's square are clamped.
RADIUS = 6378137.0
HALF_WORLD = math.pi * RADIUS  # 20037508.342789244 m
MAX_LAT = math.degrees(math.atan(math.sinh(math.pi)))  # 85.0511287798066
# The standard's level-0 cell size (2 pi R / 256 m) and the scale denominator it gives with
# the 0.28 mm "standardized rendering pixel".
CELL_SIZE_0 = 2 * HALF_WORLD / 256
PIXEL_M = 0.00028

# Venue properties carried in tiles: public and few, to keep tiles small and quick to
# build (the rest is one request away in the registry API).
TILE_FIELDS = ("id", "name_zh", "name_en", "category", "clip_count")
CLUSTER_FIELDS = {
    "cluster": ("boolean", "true for a cluster of venues (the tile held more than "
                           f"{MAX_FEATURES}); false for a venue"),
    "point_count": ("integer", "clusters only: venues in the cluster"),
    "voiced_count": ("integer", "clusters only: venues in the cluster with published voice "
                                "guides"),
}
_INT = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True)
class Tile:
    """One WebMercatorQuad tile: level ``z``, column ``x``, row ``y`` (from the top)."""

    z: int
    x: int
    y: int

    @property
    def size(self) -> float:
        """Side of the tile in EPSG:3857 metres."""
        return 2 * HALF_WORLD / 2 ** self.z

    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in EPSG:3857 metres, as PostGIS's ST_TileEnvelope."""
        minx = -HALF_WORLD + self.x * self.size
        maxy = HALF_WORLD - self.y * self.size
        return minx, maxy - self.size, minx + self.size, maxy

    def box(self, buffer: float = 0) -> tuple[float, float, float, float]:
        """(minlon, minlat, maxlon, maxlat) in WGS-84 of the tile grown by ``buffer`` tile
        units each side (a Mercator rectangle is a longitude-latitude rectangle)."""
        minx, miny, maxx, maxy = self.bounds()
        grow = buffer * self.size / EXTENT
        minlon, minlat = lon_lat(minx - grow, miny - grow)
        maxlon, maxlat = lon_lat(maxx + grow, maxy + grow)
        return max(minlon, -180.0), max(minlat, -90.0), min(maxlon, 180.0), min(maxlat, 90.0)

    def pixel(self, lon: float, lat: float) -> tuple[float, float]:
        """Where a WGS-84 point falls in the tile's coordinates (0-4096, y down), unrounded."""
        mx, my = mercator(lon, lat)
        minx, _, _, maxy = self.bounds()
        return (mx - minx) * EXTENT / self.size, (maxy - my) * EXTENT / self.size


def mercator(lon: float, lat: float) -> tuple[float, float]:
    """EPSG:3857 metres of a WGS-84 point (latitude clamped to the square's)."""
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    return (RADIUS * math.radians(lon),
            RADIUS * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)))


def lon_lat(mx: float, my: float) -> tuple[float, float]:
    """WGS-84 longitude and latitude of EPSG:3857 metres."""
    return math.degrees(mx / RADIUS), math.degrees(math.atan(math.sinh(my / RADIUS)))


def parse_tile(tms: str, z: str, x: str, y: str) -> Tile:
    """The tile a request names, checked.

    :raises NotFound: an unknown tile matrix set.
    :raises BadRequest: a level, column or row that is not a whole number in range; the
        error names it.
    """
    check_tms(tms)
    if not _INT.fullmatch(z) or not MIN_ZOOM <= int(z) <= MAX_ZOOM:
        raise BadRequest(f"z (tileMatrix) must be a whole number from {MIN_ZOOM} to "
                         f"{MAX_ZOOM}, got {z!r}", param="z")
    level = int(z)
    last = 2 ** level - 1
    for name, alias, value in (("x", "tileCol", x), ("y", "tileRow", y)):
        if not _INT.fullmatch(value) or int(value) > last:
            raise BadRequest(f"{name} ({alias}) must be a whole number from 0 to {last} at "
                             f"z={level}, got {value!r}", param=name)
    return Tile(level, int(x), int(y))


def check_tms(tms: str) -> None:
    """:raises NotFound: ``tms`` is not a tile matrix set this service offers."""
    if tms != TMS_ID:
        raise NotFound(f"unknown tile matrix set {tms!r}; this service offers {TMS_ID}",
                       param="tileMatrixSetId")


# --- tiles ---------------------------------------------------------------------------------


class ClusterCache:
    """Cluster tiles built in the last ``seconds``, at most ``size`` of them, in this process.

    A crowded tile costs a pass over every venue in it (all of them at the lowest levels),
    so each is built at most once per ``seconds`` per process. The lag is the one its
    ``Cache-Control: max-age`` already allows any cache on the way; tiles of venues are
    never kept.
    """

    def __init__(self, seconds: float = CLUSTER_SECONDS, size: int = 512,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.size, self.clock = seconds, size, clock
        self.items: OrderedDict[Tile, tuple[float, bytes]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, tile: Tile) -> bytes | None:
        """The tile's bytes if built within ``seconds``, else None."""
        with self.lock:
            found = self.items.get(tile)
            if found is None:
                return None
            if found[0] <= self.clock():
                del self.items[tile]
                return None
            self.items.move_to_end(tile)
            return found[1]

    def put(self, tile: Tile, body: bytes) -> None:
        """Keep the tile's bytes; the least recently used go past ``size``."""
        with self.lock:
            self.items[tile] = (self.clock() + self.seconds, body)
            self.items.move_to_end(tile)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


@dataclass(frozen=True)
class Rendered:
    """A tile's bytes (empty: no venue in it), and whether it shows clusters."""

    body: bytes
    clustered: bool = False

    @property
    def max_age(self) -> int:
        """Seconds a cache may keep it."""
        return CLUSTER_SECONDS if self.clustered else CACHE_SECONDS


def venue_tile(engine: Engine, tile: Tile, max_features: int = MAX_FEATURES,
               cache: ClusterCache | None = None) -> Rendered:
    """The tile as Mapbox Vector Tile bytes.

    Up to ``max_features`` venues in the buffered tile: one point each, with the public
    properties ``TILE_FIELDS`` and ``cluster=false``. More: clusters (see the module's
    docstring), taken from ``cache`` when it has them, without touching the database.
    """
    if cache is not None and (kept := cache.get(tile)) is not None:
        return Rendered(kept, clustered=True)
    with engine.connect() as conn:
        backend = backends.select(conn)
        box = tile.box(BUFFER)
        many = backend.tile_count(conn, box, max_features + 1)
        if many == 0:
            return Rendered(b"")
        if many <= max_features:
            return Rendered(backend.venue_tile(conn, tile, box))
        body = backend.cluster_tile(conn, tile, CLUSTER_GRID)
    if cache is not None:
        cache.put(tile, body)
    return Rendered(body, clustered=True)


def encode(features: list[tuple[float, float, dict[str, Any]]]) -> bytes:
    """An MVT of one ``venues`` layer from (x, y, properties) in tile coordinates (y down).

    Coordinates are rounded half to even, as PostGIS's ST_AsMVTGeom snaps them, so both
    backends put a point on the same tile unit; None properties are left out, as
    ST_AsMVT leaves out NULLs.
    """
    import mapbox_vector_tile
    import shapely

    points = shapely.points([(round(x), round(y)) for x, y, _ in features])
    layer = {"name": LAYER, "features": [
        {"geometry": point, "properties": {k: v for k, v in props.items() if v is not None}}
        for point, (_, _, props) in zip(points, features, strict=True)]}
    return mapbox_vector_tile.encode([layer], default_options={
        "extents": EXTENT, "y_coord_down": True, "quantize_bounds": None,
        "check_winding_order": False})


def etag(body: bytes) -> str:
    """A strong validator derived from the tile's bytes (the same on every host)."""
    return hashlib.sha256(body).hexdigest()[:24]


# --- metadata documents ---------------------------------------------------------------------


def tile_matrix_set() -> dict[str, Any]:
    """The OGC 2D Tile Matrix Set 2.0 JSON definition of WebMercatorQuad, levels 0-24.

    Values are computed from the definition (2 pi R / 256 m at level 0, halved at each
    level; scale = cell size / 0.28 mm) at full double precision; the registry's copy
    prints them to 15 significant digits.
    """
    origin = [-HALF_WORLD, HALF_WORLD]
    return {
        "id": TMS_ID,
        "title": "Google Maps Compatible for the World",
        "uri": TMS_URI,
        "crs": CRS_3857,
        "orderedAxes": ["X", "Y"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "boundingBox": {"lowerLeft": [-HALF_WORLD, -HALF_WORLD],
                        "upperRight": [HALF_WORLD, HALF_WORLD], "crs": CRS_3857},
        # The same under TMS 1.0's names: GDAL 3.6's (Debian 12's) tile-matrix-set parser
        # reads no others. TMS 2.0 readers ignore them.
        "identifier": TMS_ID,
        "supportedCRS": CRS_3857,
        "tileMatrices": [{
            "id": str(z),
            "identifier": str(z),
            "topLeftCorner": origin,
            "scaleDenominator": CELL_SIZE_0 / 2 ** z / PIXEL_M,
            "cellSize": CELL_SIZE_0 / 2 ** z,
            "cornerOfOrigin": "topLeft",
            "pointOfOrigin": origin,
            "tileWidth": 256,
            "tileHeight": 256,
            "matrixWidth": 2 ** z,
            "matrixHeight": 2 ** z,
        } for z in range(STANDARD_LEVELS + 1)],
    }


def tile_matrix_sets(tms_url: str) -> dict[str, Any]:
    """The list of tile matrix sets offered (one), linking to its definition."""
    return {"tileMatrixSets": [{
        "id": TMS_ID, "title": "Google Maps Compatible for the World", "uri": TMS_URI,
        "crs": CRS_3857,
        "links": [{"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                   "type": "application/json", "href": tms_url,
                   "title": f"{TMS_ID} definition"}],
    }]}


def limits(area: tuple[float, float, float, float]) -> list[dict[str, Any]]:
    """tileMatrixSetLimits: at each served level, the tiles that cover ``area`` (WGS-84).
    Every venue lies in the service area (imports refuse others); tiles outside are empty."""
    out = []
    for z in range(MIN_ZOOM, MAX_ZOOM + 1):
        n = 2 ** z
        minx, maxy = mercator(area[0], area[3])
        maxx, miny = mercator(area[2], area[1])
        size = 2 * HALF_WORLD / n

        def col(mx: float, n: int = n, size: float = size) -> int:
            return min(n - 1, max(0, int((mx + HALF_WORLD) // size)))

        def row(my: float, n: int = n, size: float = size) -> int:
            return min(n - 1, max(0, int((HALF_WORLD - my) // size)))

        out.append({"tileMatrix": str(z), "minTileRow": row(maxy), "maxTileRow": row(miny),
                    "minTileCol": col(minx), "maxTileCol": col(maxx)})
    return out


def properties_schema() -> dict[str, Any]:
    """JSON Schema of the layer's feature properties, from the data dictionary."""
    kinds = {"text": "string", "integer": "integer", "boolean": "boolean", "real": "number"}
    fields = {f.name: f for f in exchange.FIELDS}
    props: dict[str, Any] = {}
    for name in TILE_FIELDS:
        f = fields[name]
        props[name] = {"type": kinds[f.type], "description": "venues only: " + f.meaning}
        if f.unit:
            props[name]["x-unit"] = f.unit
    for name, (kind, meaning) in CLUSTER_FIELDS.items():
        props[name] = {"type": kind, "description": meaning}
    return {"type": "object", "required": ["cluster"], "properties": props}


def tileset(*, self_url: str, tms_url: str, tile_template: str, collection_url: str,
            area: tuple[float, float, float, float]) -> dict[str, Any]:
    """The tileset metadata document (OGC 2D TMS 2.0 "TileSetMetadata") of the venues."""
    return {
        "title": "Venues: vector tiles (WebMercatorQuad)",
        "description": (
            f"Child-friendly venues as Mapbox Vector Tiles, layer '{LAYER}', points in tile "
            f"coordinates 0-{EXTENT} with a {BUFFER}-unit buffer, levels {MIN_ZOOM}-"
            f"{MAX_ZOOM}. A tile holding more than {MAX_FEATURES} venues is thinned: it "
            f"shows clusters instead (a {CLUSTER_GRID} x {CLUSTER_GRID} grid, one point per "
            "occupied cell at its venues' mean position, with cluster=true, point_count and "
            "voiced_count). An empty tile is answered 204 No Content. Source data WGS-84."),
        "dataType": "vector",
        "crs": CRS_3857,
        "tileMatrixSetURI": TMS_URI,
        # The definition's URL under the name an earlier draft used (GDAL 3.6 reads it).
        "tileMatrixSetDefinition": tms_url,
        "tileMatrixSetLimits": limits(area),
        "boundingBox": {"lowerLeft": [area[0], area[1]], "upperRight": [area[2], area[3]],
                        "crs": CRS84},
        "centerPoint": {"coordinates": [round((area[0] + area[2]) / 2, 6),
                                        round((area[1] + area[3]) / 2, 6)],
                        "tileMatrix": "10", "crs": CRS84},
        "layers": [{
            "id": LAYER,
            "title": "Venues",
            "description": "one point per venue, or per cluster of venues where thinned",
            "dataType": "vector",
            "geometryDimension": 0,
            "featureType": "venue",
            "minTileMatrix": str(MIN_ZOOM),
            "maxTileMatrix": str(MAX_ZOOM),
            "propertiesSchema": properties_schema(),
        }],
        "links": [
            {"rel": "self", "type": "application/json", "href": self_url,
             "title": "this tileset's metadata"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
             "type": "application/json", "href": tms_url,
             "title": f"{TMS_ID} definition"},
            {"rel": "item", "type": MVT, "href": tile_template, "templated": True,
             "title": "Mapbox Vector Tiles ({tileMatrix} = z, {tileCol} = x, {tileRow} = y)"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/geodata",
             "type": "application/json", "href": collection_url,
             "title": "the venues collection"},
        ],
    }


def tilesets(*, self_url: str, tileset_url: str, tms_url: str) -> dict[str, Any]:
    """The list of the venues' tilesets (one, WebMercatorQuad)."""
    return {
        "links": [{"rel": "self", "type": "application/json", "href": self_url}],
        "tilesets": [{
            "title": "Venues: vector tiles (WebMercatorQuad)",
            "dataType": "vector",
            "crs": CRS_3857,
            "tileMatrixSetURI": TMS_URI,
            "links": [
                {"rel": "self", "type": "application/json", "href": tileset_url,
                 "title": "the tileset's metadata"},
                # the relation GDAL 3.6's OGC API driver looks for in a tilesets list
                {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tileset",
                 "type": "application/json", "href": tileset_url},
                {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                 "type": "application/json", "href": tms_url},
            ],
        }],
    }


# Conformance classes of OGC API - Tiles - Part 1 that these endpoints implement; the OGC
# API landing module's /ogc/conformance lists them.
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
)
