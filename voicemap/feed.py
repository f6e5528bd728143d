"""The registry as a stream of GeoJSON Feature texts, and the exports' data dictionary.

SQLAlchemy Core and ``text()`` only: no ORM models, no GeoAlchemy2, no pyproj, so that the
command line's export (which builds no app, see ``cli.export``) stays light. ``venues``
re-exports these for the rest of the code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text

from . import backends, categories, exchange
from .errors import BadRequest

# Published clips per venue, added to every venue Feature the registry returns; narrator
# details never leave through this path.
CLIP_COUNT = ("clip_count", "(SELECT count(*) FROM clips c WHERE c.venue_id = v.id "
                            "AND c.status = 'published')")
EXTRA = (CLIP_COUNT,)


def check_categories(values: Iterable[str] | None) -> list[str] | None:
    """The category ids given, checked; None or empty means all."""
    if not values:
        return None
    out = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if categories.get(part) is None:
                raise BadRequest(f"unknown category {part!r}; use one of "
                                 f"{', '.join(categories.IDS)}", param="category")
            out.append(part)
    return out or None


def iter_features(conn: Connection, *, category: Iterable[str] | None = None,
                  bbox: tuple[float, float, float, float] | None = None, q: str | None = None,
                  ids: Iterable[str] | None = None, batch: int = 2000) -> Iterator[str]:
    """Stream GeoJSON Feature texts of the venues that match, ordered by id.

    Rows arrive in batches of ``batch`` while the database keeps producing the next ones,
    so memory stays flat however many venues there are.
    """
    backend = backends.select(conn)
    where, params, binds = ["true"], {}, []
    cats = check_categories(category)
    if cats:
        where.append("v.category IN :cats")
        params["cats"] = cats
        binds.append(bindparam("cats", expanding=True))
    if bbox is not None:
        # exactly inside: the spatial index's float32 boxes alone admit points up to a
        # metre outside
        names = ("minlon", "minlat", "maxlon", "maxlat")
        where.append(backend.box_sql("venues", "v", "geom", names))
        params.update(zip(names, bbox, strict=True))
    if q:
        escaped = q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("(lower(v.name_zh) LIKE :q ESCAPE '\\' OR lower(v.name_en) LIKE :q "
                     "ESCAPE '\\' OR lower(v.id) LIKE :q ESCAPE '\\')")
        params["q"] = f"%{escaped}%"
    if ids is not None:
        where.append("v.id IN :ids")
        params["ids"] = list(ids)
        binds.append(bindparam("ids", expanding=True))
    # Most venues have no published clip: one hashed look-up finds them, and only the
    # others run the per-venue count (which alone doubled the cost of a full export).
    voiced = "v.id IN (SELECT venue_id FROM clips WHERE status = 'published')"
    extra = tuple((key, f"CASE WHEN {voiced} THEN {sql} ELSE 0 END")
                  if (key, sql) == CLIP_COUNT else (key, sql) for key, sql in EXTRA)
    stmt = text(f"SELECT {backend.feature_sql('v', extra)} FROM venues v "
                f"WHERE {' AND '.join(where)} ORDER BY v.id").bindparams(*binds)
    yield from backend.stream_texts(conn, stmt, params, batch)


def dictionary(conn: Connection, licence: str | None = None) -> dict[str, Any]:
    """The exports' data dictionary, with the registry's last change (max ``updated_at``)."""
    last = conn.execute(text("SELECT max(updated_at) FROM venues")).scalar_one()
    if isinstance(last, str):  # SQLite hands back the stored text
        last = datetime.fromisoformat(last)
    if last is not None:
        last = last.replace(tzinfo=UTC) if last.tzinfo is None else last.astimezone(UTC)
    updated = last.isoformat(timespec="seconds").replace("+00:00", "Z") if last else None
    return exchange.dictionary(updated, licence or exchange.LICENCE)
