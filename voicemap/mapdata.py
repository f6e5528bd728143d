"""The data the map loads: the venues in a box as compact rows, or grid counts past a limit.

``/api/map/venues`` answers with ``map_data``. The SQL is shared; where PostGIS and
SpatiaLite differ (how the box is asked of the spatial index, a venue's position, a grid
cell's index) each backend module's ``MAP_SQL`` supplies the terms (``backends/base.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, text

from . import backends, categories

POINT_LIMIT = 5000  # more venues than this in view: the data endpoint answers grid counts
CELL_PX = 80  # grid cell size, in screen pixels at the requested zoom

_CLIP_COUNTS = ("LEFT JOIN (SELECT venue_id, count(*) AS n FROM clips "
                "WHERE status = 'published' GROUP BY venue_id) c ON c.venue_id = v.id")


def map_data(conn: Connection, bbox: tuple[float, float, float, float], zoom: int,
             cats: list[str] | None, voiced: bool, lang: str,
             limit: int = POINT_LIMIT) -> dict[str, Any]:
    """The venues in ``bbox`` (WGS-84) as compact rows, or, past ``limit``, grid counts.

    Points: ``{"mode": "points", "v": [[id, lon, lat, category index, clips, name, min_age,
    max_age, opening_hours], ...]}`` with the name in ``lang``, the ages (null: not known)
    and the English opening hours as written in the registry (map.js parses them for
    "open now" and the age filter). Grid: ``{"mode": "grid", "cells": [[lon, lat, count,
    voiced], ...]}`` with each cell at the mean position of its venues.
    """
    backend = backends.select(conn)
    sql = backend.MAP_SQL
    where = [sql["box"] or backend.bbox_sql("v")]
    params: dict[str, Any] = dict(zip(("minlon", "minlat", "maxlon", "maxlat"), bbox,
                                      strict=True))
    binds = []
    if cats:
        where.append(sql["cats"])
        params["cats"] = list(cats)
        binds.append(bindparam("cats", expanding=True))
    if voiced:
        where.append(sql["voiced"])
    cond = " AND ".join(where)
    many = conn.execute(text(
        f"SELECT count(*) FROM (SELECT 1 FROM {sql['source']} WHERE {cond} LIMIT :limit) t")
        .bindparams(*binds), {**params, "limit": limit + 1}).scalar_one()
    if many <= limit:
        name = "v.name_zh" if lang == "zh" else "v.name_en"
        index = {cid: i for i, cid in enumerate(categories.IDS)}
        rows = conn.execute(text(
            f"SELECT v.id, ST_X(v.geom), ST_Y(v.geom), v.category, COALESCE(c.n, 0), {name}, "
            f"v.min_age, v.max_age, v.opening_hours "
            f"FROM {sql['source']} {sql['join']} {_CLIP_COUNTS} WHERE {cond}")
            .bindparams(*binds), params)
        return {"mode": "points", "v": [
            [vid, round(x, 6), round(y, 6), index.get(cat, 0), n, label, lo, hi, hours]
            for vid, x, y, cat, n, label, lo, hi, hours in rows]}
    x, y = sql["x"], sql["y"]
    gx, gy = sql["cell"].format(x, 180), sql["cell"].format(y, 90)
    cells = conn.execute(text(
        f"SELECT {gx} AS gx, {gy} AS gy, count(*), "
        f"sum(CASE WHEN {sql['voiced']} THEN 1 ELSE 0 END), avg({x}), avg({y}) "
        f"FROM {sql['source']} WHERE {cond} GROUP BY gx, gy").bindparams(*binds),
        {**params, "cell": 360.0 / 2 ** zoom * CELL_PX / 256}).all()
    return {"mode": "grid", "cells": [[round(cx, 6), round(cy, 6), int(n), int(nv or 0)]
                                      for _gx, _gy, n, nv, cx, cy in cells]}

