"""SpatiaLite: R*Tree index searched by widening boxes, ellipsoidal distances, JSON by SQLite."""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, TextClause, text

from . import properties_sql

# Half-width of the first search box on a connection that has not yet seen a query.
FIRST_RADIUS_M = 250.0
WHOLE_EARTH_M = 20_040_000.0


def setup(conn: Connection) -> None:
    """Create SpatiaLite's metadata tables (WGS-84 only) if the file has none."""
    if conn.execute(text("SELECT CheckSpatialMetaData()")).scalar() < 1:
        conn.execute(text("SELECT InitSpatialMetaData(0, 'WGS84')"))


def create_spatial_index(conn: Connection) -> None:
    """The R*Tree index (``idx_venues_geom``) kept in step by SpatiaLite's triggers."""
    enabled = conn.execute(text(
        "SELECT spatial_index_enabled FROM geometry_columns "
        "WHERE f_table_name = 'venues' AND f_geometry_column = 'geom'")).scalar()
    if not enabled:
        conn.execute(text("SELECT CreateSpatialIndex('venues', 'geom')"))


def _bool_json(expr: str) -> str:
    return (f"CASE WHEN {expr} IS NULL THEN NULL WHEN {expr} THEN json('true') "
            "ELSE json('false') END")


def feature_sql(alias: str = "v", extra: tuple[tuple[str, str], ...] = ()) -> str:
    """SQL yielding one venue as RFC 7946 GeoJSON Feature text."""
    props = properties_sql("json_object", _bool_json, alias, extra)
    return (f"json_object('type', 'Feature', 'id', {alias}.id, "
            f"'geometry', json(AsGeoJSON({alias}.geom, 7)), 'properties', {props})")


def json_feature_sql(id_expr: str, geom_expr: str,
                     pairs: tuple[tuple[str, str, str], ...]) -> str:
    """SQL yielding a GeoJSON Feature text of any table: ``pairs`` are (key, SQL expression,
    type) of its properties; booleans (stored 0 and 1) are written as JSON booleans."""
    props = ", ".join(f"'{key}', {_bool_json(expr) if kind == 'boolean' else expr}"
                      for key, expr, kind in pairs)
    return (f"json_object('type', 'Feature', 'id', {id_expr}, "
            f"'geometry', json(AsGeoJSON({geom_expr}, 7)), 'properties', json_object({props}))")


def local_time_sql(expr: str) -> str:
    """A time stored in UTC (SQLite keeps it as text without an offset) as ISO 8601 on
    Beijing's clock, to the second: ``...T10:00:00+08:00`` (no summer time in China)."""
    return f"(strftime('%Y-%m-%dT%H:%M:%S', {expr}, '+8 hours') || '+08:00')"


def stream_texts(conn: Connection, stmt: TextClause, params: dict[str, Any],
                 batch: int = 2000) -> Iterator[str]:
    """The single text column of ``stmt``'s rows, fetched ``batch`` rows at a time."""
    result = conn.execute(stmt, params)
    for partition in result.partitions(batch):
        for (value,) in partition:
            yield value


# The map's data query (``mapdata.map_data``): it works on the R*Tree alone, whose boxes are the
# points (to float precision, plenty for a grid cell's mean), which spares decoding up to
# 100,000 geometries per view.
MAP_SQL: dict[str, str | None] = {
    "source": "idx_venues_geom r", "join": "JOIN venues v ON v.rowid = r.pkid",
    "box": "r.xmin <= :maxlon AND r.xmax >= :minlon AND r.ymin <= :maxlat "
           "AND r.ymax >= :minlat",
    "x": "r.xmin", "y": "r.ymin",
    "cats": "r.pkid IN (SELECT rowid FROM venues WHERE category IN :cats)",
    "voiced": "r.pkid IN (SELECT v2.rowid FROM venues v2 JOIN clips c2 ON "
              "c2.venue_id = v2.id WHERE c2.status = 'published')",
    # truncation is floor for the positive values the offsets make
    "cell": "CAST(({} + {}) / :cell AS INTEGER)",
}


def bbox_sql(alias: str = "v") -> str:
    """A WHERE term keeping venues inside :minlon, :minlat, :maxlon, :maxlat (index-assisted).

    SpatiaLite never consults its spatial index by itself: the R*Tree is asked directly.
    """
    return (f"{alias}.rowid IN (SELECT pkid FROM idx_venues_geom WHERE xmin <= :maxlon "
            "AND xmax >= :minlon AND ymin <= :maxlat AND ymax >= :minlat)")


# Every venue in a box (asked of the R*Tree), with its exact coordinates. ``+v.category``
# keeps SQLite from preferring the category index to the R*Tree.
_IN_BOX = """
    SELECT v.rowid, v.id, ST_X(v.geom), ST_Y(v.geom)
    FROM idx_venues_geom r JOIN venues v ON v.rowid = r.pkid
    WHERE r.xmin <= :maxlon AND r.xmax >= :minlon AND r.ymin <= :maxlat
      AND r.ymax >= :minlat {cat}
"""
# Where a connection keeps its estimate of how far the k-th nearest venue usually is.
_STATE = "voicemap.nearest_scale"
MIN_RADIUS_M = 10.0


@lru_cache(maxsize=64)
def _in_box_sql(ncats: int) -> str:
    cat = ("AND +v.category IN (" + ", ".join(f":c{i}" for i in range(ncats)) + ")"
           if ncats else "")
    return _IN_BOX.format(cat=cat)


@lru_cache(maxsize=256)
def _features_sql(extra: tuple[tuple[str, str], ...], n: int) -> str:
    return (f"SELECT v.rowid, {feature_sql('v', extra)} FROM venues v "
            f"WHERE v.rowid IN ({', '.join('?' * n)})")


def _ranked(dbapi, sql: str, params: dict[str, Any], lon: float, lat: float, radius: float
            ) -> list[tuple[float, str, int]]:
    """(distance, id, rowid) of every venue in the box around the circle, nearest first.

    Distances are geodesic on the WGS-84 ellipsoid (Karney's algorithm, as ``geo``
    measures them), computed for the whole box at once.
    """
    from ..geo import WGS84, degree_box  # pyproj, only where distances are measured

    params.update(zip(("minlon", "minlat", "maxlon", "maxlat"),
                      degree_box(lon, lat, radius), strict=True))
    rows = dbapi.execute(sql, params).fetchall()
    if not rows:
        return []
    rowids, ids, xs, ys = zip(*rows, strict=True)
    n = len(rows)
    _, _, dist = WGS84.inv([lon] * n, [lat] * n, xs, ys)
    return sorted(zip(dist, ids, rowids, strict=True))


def _nearest(dbapi, state: dict, lon: float, lat: float, k: int,
             categories: list[str] | None, max_distance_m: float | None,
             extra: tuple[tuple[str, str], ...]) -> list[str]:
    lon, lat, k = float(lon), float(lat), int(k)
    limit = WHOLE_EARTH_M if max_distance_m is None else float(max_distance_m)
    sql = _in_box_sql(len(categories) if categories else 0)
    params: dict[str, Any] = {}
    if categories:
        params.update((f"c{i}", c) for i, c in enumerate(categories))
    scales = state.setdefault(_STATE, {})
    key = tuple(categories) if categories else ()
    scale = scales.get(key)
    radius = scale * math.sqrt(k) * 1.25 if scale else FIRST_RADIUS_M
    radius = min(limit, max(MIN_RADIUS_M, radius))
    # One read transaction for all the statements, unless the caller's is open.
    own = not dbapi.in_transaction
    if own:
        dbapi.execute("BEGIN")
    try:
        while True:
            found = _ranked(dbapi, sql, params, lon, lat, radius)
            if len(found) >= k:
                kth = found[k - 1][0]
                # Every venue within ``radius`` is in the box: if the k-th found is that
                # near, nothing outside can come before it.
                if kth <= radius or radius >= limit:
                    break
                # This box holds k venues within ``kth``: the box around that circle is final.
                radius = min(limit, kth)
                continue
            if radius >= limit:  # fewer than k in the whole search circle: all are answers
                break
            grow = math.sqrt(k / len(found)) * 1.5 if found else 4.0
            radius = min(limit, radius * max(2.0, grow))
        top = [row for row in found[:k] if row[0] <= limit]
        features = dict(dbapi.execute(_features_sql(extra, len(top)),
                                      [row[2] for row in top]).fetchall()) if top else {}
    finally:
        if own:
            dbapi.execute("COMMIT")
    if len(found) >= k:  # remember how far the k-th was, to size the next first box
        seen = max(found[k - 1][0], 1.0) / math.sqrt(k)
        scales[key] = seen if scale is None else math.exp(
            0.8 * math.log(scale) + 0.2 * math.log(seen))
    # Each Feature ends with its properties object: distance_m goes last in it.
    return [f'{features[rowid][:-2]},"distance_m":{round(d, 1)!r}}}}}'
            for d, _, rowid in top]


def nearest(conn: Connection, lon: float, lat: float, k: int, categories: list[str] | None,
            max_distance_m: float | None, extra: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """Feature texts of the k venues nearest (lon, lat) by geodesic distance, nearest first.

    Asks the R*Tree for the venues in a box around the point (sized from the k-th
    distances of earlier queries on this connection) and ranks them by exact geodesic
    distance. If the k-th of them lies farther than the box's inscribed circle, the box
    around that distance is final; if the box holds fewer than k, it widens. Only the
    boxes' contents are measured, never the whole table; Features are built for the k
    found only, by a second statement in the same read transaction.
    """
    return _nearest(conn.connection.driver_connection, conn.info, lon, lat, k, categories,
                    max_distance_m, extra)


def nearest_autocommit(engine: Engine, lon: float, lat: float, k: int,
                       categories: list[str] | None, max_distance_m: float | None,
                       extra: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """``nearest`` outside any caller's transaction: a pooled connection, checked out for
    this query alone, whose statements share one read transaction of their own."""
    raw = engine.raw_connection()
    try:
        return _nearest(raw.driver_connection, raw.info, lon, lat, k, categories,
                        max_distance_m, extra)
    finally:
        raw.close()


# --- vector tiles ---------------------------------------------------------------------------

# SpatiaLite has no MVT encoder: rows come through the R*Tree and are encoded by
# mapbox-vector-tile (``tiles.encode``), with the same layer, properties and rounding as
# PostGIS's ST_AsMVT.
_TILE_CLIPS = ("(SELECT count(*) FROM clips c WHERE c.venue_id = v.id "
               "AND c.status = 'published')")
_RTREE_BOX = ("r.xmin <= :maxlon AND r.xmax >= :minlon AND r.ymin <= :maxlat "
              "AND r.ymax >= :minlat")


def tile_count(conn: Connection, box: tuple[float, float, float, float], limit: int) -> int:
    """How many venues are in ``box`` (WGS-84), counting no further than ``limit``: the
    R*Tree alone answers, however many the box holds."""
    return conn.execute(text(
        f"SELECT count(*) FROM (SELECT 1 FROM idx_venues_geom r WHERE {_RTREE_BOX} "
        "LIMIT :limit)"),
        {**dict(zip(("minlon", "minlat", "maxlon", "maxlat"), box, strict=True)),
         "limit": limit}).scalar_one()


def venue_tile(conn: Connection, tile, box: tuple[float, float, float, float]) -> bytes:
    """One MVT point per venue in ``box`` (the buffered tile, WGS-84).

    ``tile`` is a ``voicemap.tiles.Tile``; the properties are ``tiles.TILE_FIELDS`` and
    ``cluster=false`` (NULLs are left out, as ST_AsMVT leaves them out). Positions are the
    exact coordinates, as on PostGIS.
    """
    from .. import tiles

    names = [f for f in tiles.TILE_FIELDS if f != "clip_count"]
    rows = conn.execute(text(
        f"SELECT {', '.join('v.' + f for f in names)}, {_TILE_CLIPS}, "
        f"ST_X(v.geom), ST_Y(v.geom) FROM venues v WHERE {bbox_sql('v')} ORDER BY v.id"),
        dict(zip(("minlon", "minlat", "maxlon", "maxlat"), box, strict=True)))
    low, high = -tiles.BUFFER, tiles.EXTENT + tiles.BUFFER
    features = []
    for row in rows:
        px, py = tile.pixel(row[-2], row[-1])
        if low <= px <= high and low <= py <= high:
            props = dict(zip(names, row[:len(names)], strict=True))
            props["clip_count"] = int(row[len(names)])
            props["cluster"] = False
            features.append((px, py, props))
    return tiles.encode(features) if features else b""


def cluster_tile(conn: Connection, tile, grid: int) -> bytes:
    """The tile's venues as clusters (see ``postgis.cluster_tile``), counted on the
    R*Tree alone: no venue row is read, however many the tile holds (a z=4 tile over
    Beijing holds all of them).

    The R*Tree keeps each point as a single-precision box; its lower corner stands for the
    point, within a metre. So a venue within a metre of a cell's or a tile's edge may fall
    on the other side of it than on PostGIS (still in exactly one tile), and a cluster's
    mean position may differ by that much.
    """
    from .. import tiles

    minlon, minlat, maxlon, maxlat = tile.box()
    voiced = ("r.pkid IN (SELECT v.rowid FROM venues v JOIN clips c ON c.venue_id = v.id "
              "WHERE c.status = 'published')")
    rows = conn.execute(text(f"""
        SELECT CAST((r.xmin - :minlon) / :dlon AS INTEGER) AS gx,
               CAST((:maxlat - r.ymin) / :dlat AS INTEGER) AS gy,
               count(*), sum(CASE WHEN {voiced} THEN 1 ELSE 0 END), avg(r.xmin), avg(r.ymin)
        FROM idx_venues_geom r
        WHERE r.xmin >= :minlon AND r.xmin < :maxlon AND r.ymin > :minlat
          AND r.ymin <= :maxlat
        GROUP BY gx, gy ORDER BY gy, gx"""),
        {"minlon": minlon, "minlat": minlat, "maxlon": maxlon, "maxlat": maxlat,
         "dlon": (maxlon - minlon) / grid, "dlat": (maxlat - minlat) / grid})
    features = [(*tile.pixel(lon, lat), {"cluster": True, "point_count": int(n),
                                         "voiced_count": int(nv or 0)})
                for _gx, _gy, n, nv, lon, lat in rows]
    return tiles.encode(features) if features else b""
# --- OGC API - Features (voicemap.ogc, voicemap.cql2) ------------------------------------


def begin_read(conn: Connection) -> None:
    """Set up the transaction of an OGC items query: nothing to do on SQLite."""


def index_box_sql(table: str, alias: str, column: str, names: tuple[str, ...]) -> str:
    """A WHERE term keeping rows whose ``column`` meets the box of the parameters ``names``
    (minx, miny, maxx, maxy; CRS84): the R*Tree asked directly, as SpatiaLite never
    consults it by itself."""
    minx, miny, maxx, maxy = (f":{n}" for n in names)
    return (f"{alias}.rowid IN (SELECT pkid FROM idx_{table}_{column} WHERE xmin <= {maxx} "
            f"AND xmax >= {minx} AND ymin <= {maxy} AND ymax >= {miny})")


def box_sql(table: str, alias: str, column: str, names: tuple[str, ...]) -> str:
    """Rows whose ``column`` intersects the box exactly: the R*Tree (float32 boxes, which
    admit points up to a metre outside), then the exact test."""
    minx, miny, maxx, maxy = (f":{n}" for n in names)
    return (f"({index_box_sql(table, alias, column, names)} AND ST_Intersects({alias}.{column}, "
            f"BuildMbr({minx}, {miny}, {maxx}, {maxy}, 4326)) = 1)")


def spatial_sql(function: str, left: str, right: str) -> str:
    """A spatial predicate (``ST_Intersects`` ...) as a boolean SQL term (SpatiaLite's
    answer 1, 0 or -1 for an invalid argument: only 1 is true)."""
    return f"({function}({left}, {right}) = 1)"


def like_sql(expr: str, tokens: list[str], bind) -> str:
    """Case-sensitive pattern match (GLOB: SQLite's LIKE ignores case): ``tokens`` are "%"
    (any run), "_" (one character) or "c" + a literal character."""
    special = {"*": "[*]", "?": "[?]", "[": "[[]"}
    pattern = "".join("*" if t == "%" else "?" if t == "_" else special.get(t[1], t[1])
                      for t in tokens)
    return f"({expr} GLOB {bind(pattern)})"
