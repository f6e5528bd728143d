"""The few operations whose SQL differs between PostGIS and SpatiaLite.

Each backend module implements the same contract, written down as the ``Backend`` Protocol in
``base.py``; ``select(bind)`` picks one, in the manner of GeoAlchemy2's ``select_dialect``.
Everything else is shared SQL.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, cast

from sqlalchemy import Connection, Engine

from .base import Backend

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def select(bind: Engine | Connection | Session | str) -> Backend:
    """The backend module for a dialect name, engine, connection or session."""
    orm = sys.modules.get("sqlalchemy.orm")  # a Session exists only where the ORM is loaded
    if orm is not None and isinstance(bind, orm.Session):
        bind = bind.get_bind()
    name = bind if isinstance(bind, str) else bind.dialect.name
    if name == "postgresql":
        from . import postgis
        return cast(Backend, postgis)
    if name == "sqlite":
        from . import spatialite
        return cast(Backend, spatialite)
    raise ValueError(f"no voicemap backend for the {name!r} dialect")


def properties_sql(build_object: str, bool_json, alias: str = "v",
                   extra: tuple[tuple[str, str], ...] = ()) -> str:
    """SQL for a venue's GeoJSON properties object, with the dialect's JSON builder.

    ``bool_json(expr)`` renders a nullable boolean column as a JSON boolean; ``extra`` adds
    (key, SQL expression) pairs after the venue's own fields.
    """
    from ..fields import VENUE_BOOL_FIELDS, VENUE_FIELDS

    pairs = [f"'id', {alias}.id"]
    for field in VENUE_FIELDS:
        expr = f"{alias}.{field}"
        if field in VENUE_BOOL_FIELDS:
            expr = bool_json(expr)
        pairs.append(f"'{field}', {expr}")
    pairs.extend(f"'{key}', {expr}" for key, expr in extra)
    return f"{build_object}({', '.join(pairs)})"
