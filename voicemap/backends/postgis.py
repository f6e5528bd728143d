"""PostGIS: GiST index, KNN ``<->`` ordering, geography distances, JSON built by PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, text

from . import properties_sql

POINT = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"


def setup(conn: Connection) -> None:
    """Enable PostGIS in the database (needs a role allowed to create the extension)."""
    conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))


def create_spatial_index(conn: Connection) -> None:
    """The GiST index that KNN and bounding-box queries use."""
    conn.execute(text("CREATE INDEX IF NOT EXISTS idx_venues_geom ON venues USING gist (geom)"))
    conn.execute(text("ANALYZE venues"))


def feature_sql(alias: str = "v", extra: tuple[tuple[str, str], ...] = ()) -> str:
    """SQL yielding one venue as RFC 7946 GeoJSON Feature text."""
    props = properties_sql("json_build_object", lambda e: e, alias, extra)
    return (f"json_build_object('type', 'Feature', 'id', {alias}.id, "
            f"'geometry', ST_AsGeoJSON({alias}.geom, 7)::json, 'properties', {props})::text")


def bbox_sql(alias: str = "v") -> str:
    """A WHERE term keeping venues inside :minlon, :minlat, :maxlon, :maxlat (index-assisted)."""
    return f"{alias}.geom && ST_MakeEnvelope(:minlon, :minlat, :maxlon, :maxlat, 4326)"


def nearest(conn: Connection, lon: float, lat: float, k: int, categories: list[str] | None,
            max_distance_m: float | None, extra: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """Feature texts of the k venues nearest (lon, lat) by geodesic distance, nearest first.

    KNN ``<->`` orders by planar degrees, which is not the geodesic order (a degree of
    longitude is 0.77 of a degree of latitude in Beijing). So the k nearest by degrees give
    only an upper bound ``d`` for the k-th geodesic distance; every true answer lies within
    ``d``, hence inside a box that the GiST index answers, where exact ellipsoidal distances
    are ranked. Both steps are index scans, in one statement.
    """
    cat = "AND v.category IN :cats" if categories else ""
    cap = "LEAST(kth.d, :maxd)" if max_distance_m is not None else "kth.d"
    dist = "ST_Distance(v.geom::geography, q.pt::geography)"
    sql = f"""
        WITH q AS (SELECT {POINT} AS pt),
        kth AS (
            SELECT max(ST_Distance(c.geom::geography, q.pt::geography)) AS d
            FROM (SELECT v.geom FROM venues v, q WHERE true {cat}
                  ORDER BY v.geom <-> q.pt LIMIT :k) c, q
        ),
        r AS (
            SELECT {cap} AS d,
                   {cap} / 110574.0 * 1.01 AS dlat,
                   {cap} / (111320.0 * cos(radians(LEAST(89.9,
                        abs(:lat) + {cap} / 110574.0 * 1.01)))) * 1.01 AS dlon
            FROM kth
        ),
        hits AS (
            SELECT v.*, {dist} AS distance_m
            FROM venues v, q, r
            WHERE v.geom && ST_Expand(q.pt, r.dlon, r.dlat) {cat} AND {dist} <= r.d
            ORDER BY distance_m, v.id
            LIMIT :k
        )
        SELECT {feature_sql("v", (("distance_m", "round(v.distance_m::numeric, 1)"),) + extra)}
        FROM hits v ORDER BY v.distance_m, v.id
    """
    stmt = text(sql)
    params = {"lon": lon, "lat": lat, "k": k}
    if categories:
        stmt = stmt.bindparams(bindparam("cats", expanding=True))
        params["cats"] = list(categories)
    if max_distance_m is not None:
        params["maxd"] = float(max_distance_m)
    return list(conn.execute(stmt, params).scalars())
