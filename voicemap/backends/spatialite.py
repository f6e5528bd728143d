"""SpatiaLite: R*Tree index searched by widening boxes, ellipsoidal distances, JSON by SQLite."""

from __future__ import annotations

import math

from sqlalchemy import Connection, bindparam, text

from ..geo import degree_box
from . import properties_sql

POINT = "MakePoint(:lon, :lat, 4326)"
# Half-width of the first search box: wide enough to hold a few venues in central Beijing.
FIRST_RADIUS_M = 2_000.0
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


def bbox_sql(alias: str = "v") -> str:
    """A WHERE term keeping venues inside :minlon, :minlat, :maxlon, :maxlat (index-assisted).

    SpatiaLite never consults its spatial index by itself: the R*Tree is asked directly.
    """
    return (f"{alias}.rowid IN (SELECT pkid FROM idx_venues_geom WHERE xmin <= :maxlon "
            "AND xmax >= :minlon AND ymin <= :maxlat AND ymax >= :minlat)")


def _in_box(conn: Connection, lon: float, lat: float, radius_m: float,
            categories: list[str] | None) -> list[tuple[float, str, int]]:
    """(distance, id, rowid) of every venue in the box around the circle of ``radius_m``."""
    minlon, minlat, maxlon, maxlat = degree_box(lon, lat, radius_m)
    cat = "AND v.category IN :cats" if categories else ""
    stmt = text(f"SELECT ST_Distance(v.geom, {POINT}, 1), v.id, v.rowid FROM venues v "
                f"WHERE {bbox_sql()} {cat}")
    params = {"lon": lon, "lat": lat, "minlon": minlon, "minlat": minlat, "maxlon": maxlon,
              "maxlat": maxlat}
    if categories:
        stmt = stmt.bindparams(bindparam("cats", expanding=True))
        params["cats"] = list(categories)
    return [tuple(row) for row in conn.execute(stmt, params)]


def nearest(conn: Connection, lon: float, lat: float, k: int, categories: list[str] | None,
            max_distance_m: float | None, extra: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """Feature texts of the k venues nearest (lon, lat) by geodesic distance, nearest first.

    Asks the R*Tree for a box around the point, widening it until it holds k venues (or
    covers the search radius); the k-th exact distance ``d`` among them bounds the answer,
    so a last box enclosing the circle of radius ``d`` holds every true neighbour. Only
    the boxes' contents are measured, never the whole table.
    """
    limit = WHOLE_EARTH_M if max_distance_m is None else float(max_distance_m)
    radius = min(FIRST_RADIUS_M, limit)
    while True:
        found = _in_box(conn, lon, lat, radius, categories)
        if len(found) >= k or radius >= limit:
            break
        # Grow by the area the missing venues need, at least doubling.
        grow = math.sqrt(k / len(found)) * 1.5 if found else 4.0
        radius = min(limit, radius * max(2.0, grow))
    if not found:
        return []
    found.sort()
    # Fewer than k anywhere within the limit: every venue found within it is an answer.
    bound = min(found[k - 1][0], limit) if len(found) >= k else limit
    if bound > radius:  # the box's inscribed circle may miss nearer venues in its corners
        found = sorted(_in_box(conn, lon, lat, bound, categories))
    top = [row for row in found if row[0] <= bound][:k]  # sorted by (distance, id)
    if not top:
        return []
    stmt = text(
        f"SELECT v.rowid, json_set({feature_sql('v', extra)}, '$.properties.distance_m', "
        f"round(ST_Distance(v.geom, {POINT}, 1), 1)) FROM venues v WHERE v.rowid IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    features = dict(conn.execute(stmt, {"lon": lon, "lat": lat,
                                        "ids": [row[2] for row in top]}).all())
    return [features[row[2]] for row in top]
