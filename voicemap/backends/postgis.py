"""PostGIS: GiST index, KNN ``<->`` ordering, ellipsoidal distances, JSON built by PostgreSQL."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, TextClause, event, text

from ..fields import VENUE_BOOL_FIELDS, VENUE_FIELDS, VENUE_INT_FIELDS


def setup(conn: Connection) -> None:
    """Enable PostGIS in the database (needs a role allowed to create the extension)."""
    conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))


def create_spatial_index(conn: Connection) -> None:
    """The GiST index that KNN and bounding-box queries use."""
    conn.execute(text("CREATE INDEX IF NOT EXISTS idx_venues_geom ON venues USING gist (geom)"))
    conn.execute(text("ANALYZE venues"))


def feature_sql(alias: str = "v", extra: tuple[tuple[str, str], ...] = ()) -> str:
    """SQL yielding one venue as RFC 7946 GeoJSON Feature text.

    The text is what ``json_build_object`` would give, byte for byte, but concatenated from
    each value's own JSON: that builder looks up the type of all of its ~40 arguments on
    every row, which made it half the cost of a nearest query and of an export.
    """
    def value(expr: str, kind: str) -> str:
        if kind == "json":  # any type: what json_build_object writes for it
            return f"COALESCE(to_json({expr})::text, 'null')"
        return f"COALESCE(({expr})::text, 'null')"  # integers and booleans read the same

    pairs = [("id", f"{alias}.id", "json")]
    for field in VENUE_FIELDS:
        kind = "raw" if field in VENUE_INT_FIELDS + VENUE_BOOL_FIELDS else "json"
        pairs.append((field, f"{alias}.{field}", kind))
    pairs.extend((key, expr, "json") for key, expr in extra)
    parts = ["'{\"type\" : \"Feature\", \"id\" : '", value(f"{alias}.id", "json"),
             "', \"geometry\" : '", f"ST_AsGeoJSON({alias}.geom, 7)", "', \"properties\" : {'"]
    for i, (key, expr, kind) in enumerate(pairs):
        parts.append("'" + (", " if i else "") + f'"{key}" : ' + "'")
        parts.append(value(expr, kind))
    parts.append("'}}'")
    return "(" + " || ".join(parts) + ")"


def json_feature_sql(id_expr: str, geom_expr: str,
                     pairs: tuple[tuple[str, str, str], ...]) -> str:
    """SQL yielding a GeoJSON Feature text of any table: ``pairs`` are (key, SQL expression,
    type) of its properties (a small collection's, so json_build_object's cost is fine)."""
    props = ", ".join(f"'{key}', {expr}" for key, expr, _ in pairs)
    return (f"json_build_object('type', 'Feature', 'id', {id_expr}, 'geometry', "
            f"ST_AsGeoJSON({geom_expr}, 7)::json, 'properties', "
            f"json_build_object({props}))::text")


def local_time_sql(expr: str) -> str:
    """A timestamptz as ISO 8601 on Beijing's clock, to the second: ``...T10:00:00+08:00``
    (China keeps no summer time, so the offset is always +08:00)."""
    return (f"(to_char({expr} AT TIME ZONE 'Asia/Shanghai', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS') || '+08:00')")


def stream_texts(conn: Connection, stmt: TextClause, params: dict[str, Any],
                 batch: int = 2000) -> Iterator[str]:
    """The single text column of ``stmt``'s rows, streamed.

    The server sends rows without waiting to be asked for each batch (libpq's chunked
    rows mode), so building them overlaps with the caller consuming them; a server-side
    cursor would alternate the two. Only ``batch`` rows are held at a time. Runs on the
    connection's own transaction; stopping early cancels the rest of the query.
    """
    compiled = stmt.bindparams(**params).compile(
        dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    with conn.connection.driver_connection.cursor() as cur:
        for (value,) in cur.stream(str(compiled), compiled.params, size=batch):
            yield value


# The map's data query (``mapdata.map_data``): the GiST index through ``bbox_sql``.
MAP_SQL: dict[str, str | None] = {
    "source": "venues v", "join": "", "box": None, "x": "ST_X(v.geom)", "y": "ST_Y(v.geom)",
    "cats": "v.category IN :cats",
    "voiced": "v.id IN (SELECT venue_id FROM clips WHERE status = 'published')",
    "cell": "floor(({} + {}) / :cell)",
}


def bbox_sql(alias: str = "v") -> str:
    """A WHERE term keeping venues inside :minlon, :minlat, :maxlon, :maxlat (index-assisted)."""
    return f"{alias}.geom && ST_MakeEnvelope(:minlon, :minlat, :maxlon, :maxlat, 4326)"


# The nearest-k statement, in psycopg's own placeholder style: one text for every
# argument combination but k (NULL categories or limit switch their terms off), so each
# connection prepares it once and reuses its plan. k is written in: a LIMIT parameter makes
# the generic plan assume a tenth of the table, and so JIT-compile (~10 ms a query). The
# category test is written so that no plan can prefer the category b-tree to the spatial
# index: both steps stay GiST scans.
_PT = "ST_SetSRID(ST_MakePoint(%(lon)s::float8, %(lat)s::float8), 4326)"
_CAT = "(%(cats)s::text[] IS NULL OR (v.category || '') = ANY(%(cats)s::text[]))"
# Geodesic distance on the WGS-84 ellipsoid: what ST_Distance gives on geography (the same
# GeographicLib solution), without casting every candidate to geography.
_SPHEROID = "'SPHEROID[\"WGS 84\",6378137,298.257223563]'"
_DIST = f"ST_DistanceSpheroid(v.geom, {_PT}, {_SPHEROID})"
_BOUND = "LEAST(kth.d, %(maxd)s::float8)"  # LEAST ignores a NULL limit
_NEAREST = f"""
    WITH kth AS (
        SELECT max({_DIST}) AS d
        FROM (SELECT v.geom FROM venues v WHERE {_CAT}
              ORDER BY v.geom <-> {_PT} LIMIT {{k}}) v
    ),
    r AS (
        SELECT {_BOUND} AS d,
               {_BOUND} / 110574.0 * 1.01 AS dlat,
               {_BOUND} / (111320.0 * cos(radians(LEAST(89.9,
                    abs(%(lat)s::float8) + {_BOUND} / 110574.0 * 1.01)))) * 1.01 AS dlon
        FROM kth
    ),
    cand AS MATERIALIZED (  -- each candidate's distance computed once
        SELECT v.*, {_DIST} AS distance_m
        FROM venues v, r
        WHERE v.geom && ST_Expand({_PT}, r.dlon, r.dlat) AND {_CAT}
    ),
    hits AS (
        SELECT v.* FROM cand v, r WHERE v.distance_m <= r.d
        ORDER BY v.distance_m, v.id
        LIMIT {{k}}
    )
"""


@lru_cache(maxsize=256)
def _nearest_sql(extra: tuple[tuple[str, str], ...], k: int) -> str:
    feature = feature_sql("v", (("distance_m", "round(v.distance_m::numeric, 1)"),) + extra)
    return (_NEAREST.format(k=int(k))  # psycopg reads "%" as a placeholder: "%%" is one
            + f"SELECT {feature.replace('%', '%%')} FROM hits v ORDER BY v.distance_m, v.id")


def _nearest_params(lon: float, lat: float, categories: list[str] | None,
                    max_distance_m: float | None) -> dict[str, Any]:
    return {"lon": float(lon), "lat": float(lat),
            "cats": list(categories) if categories else None,
            "maxd": None if max_distance_m is None else float(max_distance_m)}


def nearest(conn: Connection, lon: float, lat: float, k: int, categories: list[str] | None,
            max_distance_m: float | None, extra: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """Feature texts of the k venues nearest (lon, lat) by geodesic distance, nearest first.

    KNN ``<->`` orders by planar degrees, which is not the geodesic order (a degree of
    longitude is 0.77 of a degree of latitude in Beijing). So the k nearest by degrees give
    only an upper bound ``d`` for the k-th geodesic distance; every true answer lies within
    ``d``, hence inside a box that the GiST index answers, where exact ellipsoidal distances
    are ranked. Both steps are index scans, in one statement, run as a server-prepared
    statement on the connection's own transaction (one round trip).
    """
    with conn.connection.driver_connection.cursor() as cur:
        cur.execute(_nearest_sql(extra, k),
                    _nearest_params(lon, lat, categories, max_distance_m), prepare=True)
        return [row[0] for row in cur.fetchall()]


class _Direct:
    """This process's autocommit connections for one engine, for single-statement reads.

    A request that has no transaction open gets its answer in one round trip on one of
    these (no pool checkout, liveness ping, BEGIN or ROLLBACK); a connection found broken
    is replaced and the statement tried once more, which is safe as it only reads. Each
    connection keeps one cursor, reused.
    """

    def __init__(self, engine: Engine) -> None:
        self.args, self.kwargs = engine.dialect.create_connect_args(engine.url)
        self.idle = _Idle()
        # Closed with the engine's pool (``dispose``), or when the engine is collected.
        event.listen(engine, "engine_disposed", lambda _engine, idle=self.idle: idle.close())
        weakref.finalize(engine, self.idle.close)

    def _connect(self) -> psycopg.Cursor:
        return psycopg.connect(*self.args, **self.kwargs, autocommit=True).cursor()

    def fetch(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        cur = self.idle.take() or self._connect()
        for attempt in (1, 2):
            try:
                cur.execute(sql, params, prepare=True)
                rows = cur.fetchall()
            except psycopg.OperationalError:
                if cur.connection.broken and attempt == 1:  # e.g. the server restarted
                    cur.connection.close()
                    cur = self._connect()
                    continue
                self._release(cur)
                raise
            except BaseException:
                self._release(cur)
                raise
            self.idle.give(cur)
            return rows
        raise AssertionError("unreachable")

    def _release(self, cur: psycopg.Cursor) -> None:
        """Keep a connection that a failed statement left idle; close any other."""
        conn = cur.connection
        if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            self.idle.give(cur)
        else:
            conn.close()


class _Idle:
    """The idle connections (by their cursors), owned by the process that opened them.

    A forked child never uses or closes its parent's (closing would end the parent's
    session): it drops them, and psycopg leaves their sockets alone when collected.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.cursors: list[psycopg.Cursor] = []

    def _mine(self) -> list[psycopg.Cursor]:
        if self.pid != os.getpid():
            self.pid, self.cursors = os.getpid(), []
        return self.cursors

    def take(self) -> psycopg.Cursor | None:
        try:
            return self._mine().pop()  # atomic: threads never share a connection
        except IndexError:
            return None

    def give(self, cur: psycopg.Cursor) -> None:
        self._mine().append(cur)

    def close(self) -> None:
        cursors = self._mine()
        while cursors:
            cursors.pop().connection.close()


_DIRECT: weakref.WeakKeyDictionary[Engine, _Direct] = weakref.WeakKeyDictionary()


def nearest_autocommit(engine: Engine, lon: float, lat: float, k: int,
                       categories: list[str] | None, max_distance_m: float | None,
                       extra: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """``nearest`` outside any transaction, on a connection of this process's own."""
    direct = _DIRECT.get(engine)
    if direct is None:
        direct = _DIRECT.setdefault(engine, _Direct(engine))
    rows = direct.fetch(_nearest_sql(extra, k),
                        _nearest_params(lon, lat, categories, max_distance_m))
    return [row[0] for row in rows]


# --- vector tiles ---------------------------------------------------------------------------

# Published clips per venue, for tiles (a handful of venues per tile: the clips index).
_TILE_CLIPS = ("(SELECT count(*) FROM clips c WHERE c.venue_id = v.id "
               "AND c.status = 'published')")
_VOICED = "v.id IN (SELECT venue_id FROM clips WHERE status = 'published')"


def tile_count(conn: Connection, box: tuple[float, float, float, float], limit: int) -> int:
    """How many venues are in ``box`` (WGS-84), counting no further than ``limit`` (the
    GiST index stops there)."""
    return conn.execute(text(
        f"SELECT count(*) FROM (SELECT 1 FROM venues v WHERE {bbox_sql('v')} "
        "LIMIT :limit) t"),
        {**dict(zip(("minlon", "minlat", "maxlon", "maxlat"), box, strict=True)),
         "limit": limit}).scalar_one()


def venue_tile(conn: Connection, tile, box: tuple[float, float, float, float]) -> bytes:
    """One MVT point per venue in ``box`` (the buffered tile, WGS-84), built by ST_AsMVT.

    ``tile`` is a ``voicemap.tiles.Tile``; the properties are ``tiles.TILE_FIELDS`` and
    ``cluster=false`` (NULLs are left out of a feature, as MVT has no null).
    """
    from .. import tiles

    cols = ", ".join(f"v.{f}" for f in tiles.TILE_FIELDS if f != "clip_count")
    sql = f"""
        SELECT ST_AsMVT(t, '{tiles.LAYER}', {tiles.EXTENT}, 'geom') FROM (
            SELECT ST_AsMVTGeom(ST_Transform(v.geom, 3857), ST_TileEnvelope(:z, :x, :y),
                                {tiles.EXTENT}, {tiles.BUFFER}, true) AS geom,
                   {cols}, {_TILE_CLIPS} AS clip_count, false AS cluster
            FROM venues v
            WHERE {bbox_sql('v')}
            ORDER BY v.id
        ) t WHERE t.geom IS NOT NULL"""
    params = {"z": tile.z, "x": tile.x, "y": tile.y,
              **dict(zip(("minlon", "minlat", "maxlon", "maxlat"), box, strict=True))}
    return bytes(conn.execute(text(sql), params).scalar_one() or b"")


def cluster_tile(conn: Connection, tile, grid: int) -> bytes:
    """The tile's venues as clusters, built by ST_AsMVT: a ``grid`` x ``grid`` cutting of the
    tile (in longitude and latitude), one point per occupied cell at the mean position of
    its venues, with ``cluster=true``, ``point_count`` and ``voiced_count``.

    Only venues inside the tile count (west and north edges in, east and south out), so
    each is in one tile of the level.
    """
    from .. import tiles

    minlon, minlat, maxlon, maxlat = tile.box()
    sql = f"""
        WITH cells AS (
            SELECT floor((ST_X(v.geom) - :minlon) / :dlon) AS gx,
                   floor((:maxlat - ST_Y(v.geom)) / :dlat) AS gy,
                   count(*) AS n, sum(CASE WHEN {_VOICED} THEN 1 ELSE 0 END) AS nv,
                   avg(ST_X(v.geom)) AS lon, avg(ST_Y(v.geom)) AS lat
            FROM venues v
            WHERE {bbox_sql('v')} AND ST_X(v.geom) >= :minlon AND ST_X(v.geom) < :maxlon
              AND ST_Y(v.geom) > :minlat AND ST_Y(v.geom) <= :maxlat
            GROUP BY gx, gy
        )
        SELECT ST_AsMVT(t, '{tiles.LAYER}', {tiles.EXTENT}, 'geom') FROM (
            SELECT ST_AsMVTGeom(ST_Transform(ST_SetSRID(ST_MakePoint(lon, lat), 4326), 3857),
                                ST_TileEnvelope(:z, :x, :y), {tiles.EXTENT},
                                {tiles.BUFFER}, true) AS geom,
                   true AS cluster, n AS point_count, nv AS voiced_count
            FROM cells ORDER BY gy, gx
        ) t WHERE t.geom IS NOT NULL"""
    params = {"z": tile.z, "x": tile.x, "y": tile.y, "minlon": minlon, "minlat": minlat,
              "maxlon": maxlon, "maxlat": maxlat, "dlon": (maxlon - minlon) / grid,
              "dlat": (maxlat - minlat) / grid}
    return bytes(conn.execute(text(sql), params).scalar_one() or b"")
# --- OGC API - Features (voicemap.ogc, voicemap.cql2) ------------------------------------


def begin_read(conn: Connection) -> None:
    """Set up the transaction of an OGC items query: no JIT. A page deep into a large bbox
    is costed high enough to be JIT-compiled, which took 0.5 s of a 1 s page here."""
    conn.exec_driver_sql("SET LOCAL jit = off")


def index_box_sql(table: str, alias: str, column: str, names: tuple[str, ...]) -> str:
    """A WHERE term keeping rows whose ``column`` meets the box of the parameters ``names``
    (minx, miny, maxx, maxy; CRS84), answered by the GiST index."""
    minx, miny, maxx, maxy = (f":{n}" for n in names)
    return f"{alias}.{column} && ST_MakeEnvelope({minx}, {miny}, {maxx}, {maxy}, 4326)"


def box_sql(table: str, alias: str, column: str, names: tuple[str, ...]) -> str:
    """Rows whose ``column`` intersects the box exactly: ``&&`` alone compares the float4
    boxes of the index, which admit points up to a metre outside."""
    minx, miny, maxx, maxy = (f":{n}" for n in names)
    return (f"ST_Intersects({alias}.{column}, "
            f"ST_MakeEnvelope({minx}, {miny}, {maxx}, {maxy}, 4326))")


def spatial_sql(function: str, left: str, right: str) -> str:
    """A spatial predicate (``ST_Intersects`` ...) as a boolean SQL term."""
    return f"{function}({left}, {right})"


def like_sql(expr: str, tokens: list[str], bind) -> str:
    """Case-sensitive pattern match: ``tokens`` are "%" (any run), "_" (one character) or
    "c" + a literal character; ``bind(value)`` returns a parameter's placeholder."""
    pattern = "".join(t if t in ("%", "_") else
                      ("\\" + t[1] if t[1] in "%_\\" else t[1]) for t in tokens)
    return f"({expr} LIKE {bind(pattern)} ESCAPE '\\')"
