"""Alembic's environment for voicemap's schema (see README here); run by ``voicemap.db``."""

from __future__ import annotations

# SpatiaLite's own tables (besides those geoalchemy2's include_object knows by prefix):
# not the app's, never to be migrated.
SPATIALITE_TABLES = {"elementarygeometries", "knn", "knn2", "spatialindex", "data_licenses",
                     "sql_statements_log"}


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """What autogenerate compares: the app's tables, not the spatial extension's."""
    from geoalchemy2 import alembic_helpers

    if type_ == "table" and name and name.lower() in SPATIALITE_TABLES:
        return False
    # The spatial index (GiST / R*Tree idx_venues_geom) is made by the backends, not declared
    # in the models; the R*Tree's own tables are idx_* too.
    if type_ == "index" and name and name.startswith("idx_"):
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)
