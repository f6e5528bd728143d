"""The order in which native libraries load: the geodata wheels before SpatiaLite.

Process-wide state, standard library only, so that the pure modules (exchange.py) can ask
for GDAL without importing the database layer.
"""

from __future__ import annotations

import sys

_state = {"spatialite": False}  # whether this process has loaded mod_spatialite yet


def load_wheel_libraries_first(gdal: bool = True) -> None:
    """Import shapely and pyproj (and, with ``gdal``, pyogrio) before SpatiaLite is loaded.

    mod_spatialite is loaded by SQLite with RTLD_GLOBAL and drags in the system's GEOS, PROJ
    and SQLite; the shapely, pyproj and pyogrio wheels carry their own copies. Loading the
    wheels first binds their symbols to their own libraries; the other order crashes the
    process the first time shapely or GDAL is used ("WKB output dimension", free(): invalid
    pointer). Only SpatiaLite needs this, so PostGIS processes (and the CLI's start-up)
    do not pay for the imports.

    The rule: a process loads every one of them that it may use before its first SpatiaLite
    connection. shapely and pyproj are cheap beside the registry (geoalchemy2 imports
    shapely anyway) and always come first. GDAL costs about 85 MB of resident memory, so it
    is skipped where the caller knows it will not be used (a CLI command that writes
    GeoJSON); :func:`require_gdal` then refuses to load it late rather than crash.
    """
    import pyproj  # noqa: F401
    import shapely  # noqa: F401

    if gdal and not _state["spatialite"]:
        import pyogrio  # noqa: F401


def spatialite_loaded() -> None:
    """Note that this process has loaded mod_spatialite (db.py's connect hook calls it)."""
    _state["spatialite"] = True


def require_gdal() -> None:
    """Import pyogrio, or refuse if SpatiaLite was loaded first in this process.

    Call before using geopandas or pyogrio (exchange.py does).
    :raises RuntimeError: SpatiaLite was loaded without GDAL before it (a programming error).
    """
    if "pyogrio" not in sys.modules and _state["spatialite"]:
        raise RuntimeError("GDAL (pyogrio) must be imported before SpatiaLite is loaded: build "
                           "the engine with gdal=True (config PRELOAD) in this process")
    import pyogrio  # noqa: F401
