"""Engines and sessions for both backends, SpatiaLite loading, schema creation.

One engine per app; one SQLAlchemy ``Session`` per request (``get_session``), closed at
teardown. The embedded default is a SpatiaLite file; a ``postgresql+psycopg://`` URL selects
PostGIS.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import click
from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from . import backends, models

# Where SpatiaLite lives: the loader name works wherever the library is on the linker path
# (Debian/Ubuntu: libsqlite3-mod-spatialite; Homebrew: libspatialite). Override with the
# variable GeoAlchemy2 also reads.
SPATIALITE_LIBRARY = os.environ.get("SPATIALITE_LIBRARY_PATH", "mod_spatialite")
SQLITE_MMAP_BYTES = 1 << 30  # the most of a SpatiaLite file that reads see through mmap
# How long a SpatiaLite writer waits for another's transaction before giving up (and the
# request answers 503 with Retry-After). Override with VOICEMAP_SQLITE_BUSY_TIMEOUT_MS.
SQLITE_BUSY_TIMEOUT_MS = 15000


class SpatialiteUnavailable(RuntimeError):
    """No sqlite3 binding that can load extensions, or no mod_spatialite to load."""


def sqlite_dbapi() -> ModuleType:
    """A DB-API sqlite module that can load extensions.

    The standard library's works when Python was built with loadable extensions (Debian's and
    most distributions' Pythons); pyenv's and python.org's macOS builds are not, and there the
    ``pysqlite3`` module (the ``pysqlite3-binary`` wheel on Linux x86-64) stands in.
    """
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    try:
        from pysqlite3 import dbapi2
    except ImportError:
        raise SpatialiteUnavailable(
            "This Python's sqlite3 module cannot load extensions, so SpatiaLite cannot be used, "
            "and the pysqlite3 module is not installed. Install 'pysqlite3-binary' "
            "(Linux x86-64) or 'pysqlite3' (builds from source), use a Python built with "
            "--enable-loadable-sqlite-extensions, or set VOICEMAP_DATABASE_URL to a PostGIS "
            "database."
        ) from None
    return dbapi2


def _load_wheel_libraries_first() -> None:
    """Import shapely, pyproj and pyogrio before SpatiaLite is loaded.

    mod_spatialite is loaded by SQLite with RTLD_GLOBAL and drags in the system's GEOS, PROJ
    and SQLite; the shapely, pyproj and pyogrio wheels carry their own copies. Loading the
    wheels first binds their symbols to their own libraries; the other order crashes the
    process the first time shapely or GDAL is used ("WKB output dimension", free(): invalid
    pointer). Only SpatiaLite needs this, so PostGIS processes (and the CLI's start-up)
    do not pay for the imports.
    """
    import pyogrio  # noqa: F401
    import pyproj  # noqa: F401
    import shapely  # noqa: F401


def _on_sqlite_connect(dbapi_conn, _record, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
                       ) -> None:
    # Let SQLAlchemy, not the driver, decide where transactions begin (see the "begin"
    # listener), so that an import is really one transaction.
    dbapi_conn.isolation_level = None
    try:
        dbapi_conn.enable_load_extension(True)
        dbapi_conn.load_extension(SPATIALITE_LIBRARY)
        dbapi_conn.enable_load_extension(False)
    except Exception as exc:
        raise SpatialiteUnavailable(
            f"Could not load SpatiaLite ({SPATIALITE_LIBRARY!r}): {exc}. On Debian/Ubuntu "
            "install libsqlite3-mod-spatialite (scripts/run does), or set "
            "SPATIALITE_LIBRARY_PATH to the library's path."
        ) from exc
    # WAL: readers never wait for the writer; the busy timeout makes a second writer wait
    # for the first instead of failing at once.
    for pragma in ("foreign_keys = ON", "journal_mode = WAL", "synchronous = NORMAL",
                   f"busy_timeout = {int(busy_timeout_ms)}"):
        dbapi_conn.execute("PRAGMA " + pragma)


def _on_sqlite_begin(conn) -> None:
    # A transaction that will write takes the write lock when it begins (IMMEDIATE), so it
    # waits its turn under the busy timeout. A deferred one that reads first and writes
    # later cannot wait: if another writer committed meanwhile, SQLite refuses the upgrade
    # at once ("database is locked"), which is how imports failed beside uploads.
    write = conn.get_execution_options().get("voicemap_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_engine(url: str, *, busy_timeout_ms: int | None = None) -> Engine:
    """An engine for ``url``: SpatiaLite for sqlite URLs, PostGIS for postgresql ones."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        _load_wheel_libraries_first()
        engine = create_engine(u, module=sqlite_dbapi())
        timeout = SQLITE_BUSY_TIMEOUT_MS if busy_timeout_ms is None else busy_timeout_ms
        event.listen(engine, "connect",
                     lambda dbapi_conn, record: _on_sqlite_connect(dbapi_conn, record, timeout))
        # Read the file through a shared memory map rather than read() calls into each
        # connection's small page cache: a nearest-k query touches a few dozen random pages.
        event.listen(engine, "connect", lambda dbapi_conn, _record: dbapi_conn.execute(
            f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}"))
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    if u.get_backend_name() == "postgresql":
        if u.drivername == "postgresql":
            u = u.set(drivername="postgresql+psycopg")
        return create_engine(u, pool_pre_ping=True, pool_size=5, max_overflow=5)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or "
                     "postgresql+psycopg://...")


def init_schema(engine: Engine) -> None:
    """Create the spatial extension's metadata and the tables, if missing (idempotent)."""
    backend = backends.select(engine)
    with engine.begin() as conn:
        backend.setup(conn)
    models.Base.metadata.create_all(engine)
    with engine.begin() as conn:
        _add_missing_columns(conn)
        backend.create_spatial_index(conn)


def _add_missing_columns(conn) -> None:
    """Add columns that newer versions of the models have and an older file lacks.

    The schema only ever grows by nullable or defaulted columns, so this is all the
    migration it needs so far.
    """
    inspector = inspect(conn)
    for table in models.Base.metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable and column.server_default is None:
                raise RuntimeError(f"cannot add {table.name}.{column.name} to an existing "
                                   "database: it is required and has no default")
            ddl = f"ALTER TABLE {table.name} ADD COLUMN {column.name} " + \
                column.type.compile(conn.dialect)
            if column.server_default is not None:
                default = column.server_default.arg
                if not isinstance(default, str):
                    default = default.compile(dialect=conn.dialect)
                ddl += f" DEFAULT {default}"
                if not column.nullable:
                    ddl += " NOT NULL"
            conn.execute(text(ddl))


# --- Flask integration -------------------------------------------------------------------


def engine() -> Engine:
    """The current app's engine."""
    return current_app.extensions["voicemap.engine"]


def writer(eng: Engine) -> Engine:
    """The engine whose transactions take SQLite's write lock as they begin (see
    ``_on_sqlite_begin``); PostgreSQL ignores the option."""
    return eng.execution_options(voicemap_write=True)


def get_session() -> Session:
    """The request's session, opened on first use.

    Requests that may write (anything but GET, HEAD and OPTIONS) and the command line get a
    session whose transactions take SQLite's write lock when they begin; reads do not.
    """
    if "db_session" not in g:
        write = not has_request_context() or request.method not in ("GET", "HEAD", "OPTIONS")
        g.db_session = Session(writer(engine()) if write else engine(), expire_on_commit=False)
    return g.db_session


@contextmanager
def session_scope(eng: Engine | None = None) -> Iterator[Session]:
    """A writing session outside a request (CLI, scripts): committed on success, rolled back
    on error."""
    with Session(writer(eng or engine()), expire_on_commit=False) as session, session.begin():
        yield session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


@click.command("init-db")
def init_db_command() -> None:
    """Create the database schema (and the spatial metadata) if it is missing."""
    init_schema(engine())
    click.echo(f"Schema ready in {engine().url.render_as_string(hide_password=True)}")


def init_app(app: Flask) -> None:
    """Create the app's engine and register session teardown."""
    app.extensions["voicemap.engine"] = make_engine(
        app.config["DATABASE_URL"], busy_timeout_ms=app.config.get("SQLITE_BUSY_TIMEOUT_MS"))
    app.teardown_appcontext(_close_session)
