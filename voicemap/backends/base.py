"""The backend contract: what PostGIS and SpatiaLite each provide, and what it promises.

voicemap's SQL is shared wherever the two databases agree. Where they differ (how a spatial
index is asked, how JSON is built, how time zones and booleans are written, how the k
nearest are found), each backend module (``postgis.py``, ``spatialite.py``) implements the
functions below with the same signatures; ``backends.select(bind)`` picks one. A backend is
a module rather than a class, in the manner of GeoAlchemy2's dialect modules, so this
Protocol is structural: ``tests/test_backends.py`` checks that both modules have every
member with this signature. Coordinates are WGS-84 (EPSG:4326) longitude, latitude;
distances are geodesic metres on the WGS-84 ellipsoid.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, TextClause

Box = tuple[float, float, float, float]  # minlon, minlat, maxlon, maxlat (WGS-84)
Extra = tuple[tuple[str, str], ...]  # (property key, SQL expression) pairs


class Backend(Protocol):
    # How the map's data query (``mapdata.map_data``) finds, filters and places the venues of a
    # box: ``source`` and ``join`` (FROM), ``box`` (WHERE term, or None for ``bbox_sql``),
    # ``x``/``y`` (a venue's position), ``cats`` (category filter on :cats), ``voiced`` (has
    # a published clip) and ``cell`` (a grid cell index, formatted with a coordinate and
    # its offset).
    MAP_SQL: dict[str, str | None]

    # --- schema --------------------------------------------------------------------------
    def setup(self, conn: Connection) -> None:
        """Make the database spatial (extension or metadata tables), if it is not yet."""

    def create_spatial_index(self, conn: Connection) -> None:
        """The spatial index on ``venues.geom`` that nearest and box queries use."""

    # --- rendering rows as JSON -----------------------------------------------------------
    def feature_sql(self, alias: str = "v", extra: Extra = ()) -> str:
        """SQL yielding one venue as RFC 7946 GeoJSON Feature text (the same bytes on both
        backends), its properties ``models.VENUE_FIELDS`` followed by ``extra``."""

    def json_feature_sql(self, id_expr: str, geom_expr: str,
                         pairs: tuple[tuple[str, str, str], ...]) -> str:
        """SQL yielding a GeoJSON Feature text of any table; ``pairs`` are (key, SQL
        expression, type) of its properties, booleans written as JSON booleans."""

    def local_time_sql(self, expr: str) -> str:
        """A stored instant as ISO 8601 on Beijing's clock, to the second (+08:00)."""

    def stream_texts(self, conn: Connection, stmt: TextClause, params: dict[str, Any],
                     batch: int = 2000) -> Iterator[str]:
        """The single text column of ``stmt``'s rows, holding about ``batch`` at a time."""

    # --- spatial queries -----------------------------------------------------------------
    def bbox_sql(self, alias: str = "v") -> str:
        """A WHERE term keeping venues inside :minlon, :minlat, :maxlon, :maxlat, answered
        by the spatial index."""

    def nearest(self, conn: Connection, lon: float, lat: float, k: int,
                categories: list[str] | None, max_distance_m: float | None,
                extra: Extra = ()) -> list[str]:
        """Feature texts of the k venues nearest (lon, lat) by geodesic distance, nearest
        first, ties by id; only ``categories`` if given, none beyond ``max_distance_m``."""

    def nearest_autocommit(self, engine: Engine, lon: float, lat: float, k: int,
                           categories: list[str] | None, max_distance_m: float | None,
                           extra: Extra = ()) -> list[str]:
        """``nearest`` outside any caller's transaction, on a connection of its own."""

    def tile_count(self, conn: Connection, box: Box, limit: int) -> int:
        """How many venues are in ``box``, counting no further than ``limit``."""

    def venue_tile(self, conn: Connection, tile: Any, box: Box) -> bytes:
        """A Mapbox Vector Tile with one point per venue in ``box`` (the buffered
        ``tiles.Tile``), properties ``tiles.TILE_FIELDS`` and ``cluster=false``."""

    def cluster_tile(self, conn: Connection, tile: Any, grid: int) -> bytes:
        """The tile's venues as ``grid`` x ``grid`` clusters: one point per occupied cell at
        its venues' mean position, with ``cluster=true``, ``point_count``, ``voiced_count``."""

    # --- OGC API items (voicemap.ogc, voicemap.cql2) -------------------------------------
    def begin_read(self, conn: Connection) -> None:
        """Prepare the read transaction of an items query (planner settings)."""

    def index_box_sql(self, table: str, alias: str, column: str,
                      names: tuple[str, ...]) -> str:
        """A WHERE term keeping rows whose ``column`` meets the box of the parameters
        ``names`` (minx, miny, maxx, maxy; CRS84), answered by the spatial index alone
        (which may admit points up to a metre outside)."""

    def box_sql(self, table: str, alias: str, column: str, names: tuple[str, ...]) -> str:
        """As ``index_box_sql``, then the exact test: no point outside the box."""

    def spatial_sql(self, function: str, left: str, right: str) -> str:
        """A spatial predicate (``ST_Intersects`` ...) as a boolean SQL term."""

    def like_sql(self, expr: str, tokens: list[str], bind: Any) -> str:
        """Case-sensitive pattern match: ``tokens`` are "%" (any run), "_" (one character)
        or "c" + a literal character; ``bind(value)`` returns a parameter's placeholder."""
