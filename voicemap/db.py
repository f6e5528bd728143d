"""Engines and sessions for both backends, SpatiaLite loading, schema migrations.

One engine per app; one SQLAlchemy ``Session`` per request (``get_session``), closed at
teardown. The embedded default is a SpatiaLite file; a ``postgresql+psycopg://`` URL selects
PostGIS.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import click
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from . import libs

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from flask import Flask
    from sqlalchemy.orm import Session

# Flask and the ORM are imported where they are used: the command line's export opens an
# engine (``make_engine``, ``check_current``) without loading either.

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


def _on_sqlite_connect(dbapi_conn, _record, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
                       ) -> None:
    # Let SQLAlchemy, not the driver, decide where transactions begin (see the "begin"
    # listener), so that an import is really one transaction.
    dbapi_conn.isolation_level = None
    try:
        dbapi_conn.enable_load_extension(True)
        dbapi_conn.load_extension(SPATIALITE_LIBRARY)
        dbapi_conn.enable_load_extension(False)
        libs.spatialite_loaded()
    except Exception as exc:
        raise SpatialiteUnavailable(
            f"Could not load SpatiaLite ({SPATIALITE_LIBRARY!r}): {exc}. On Debian/Ubuntu "
            "install libsqlite3-mod-spatialite (scripts/run does), or set "
            "SPATIALITE_LIBRARY_PATH to the library's path."
        ) from exc
    _journal_mode_wal(dbapi_conn, busy_timeout_ms)
    for pragma in ("foreign_keys = ON", "synchronous = NORMAL",
                   f"busy_timeout = {int(busy_timeout_ms)}"):
        dbapi_conn.execute("PRAGMA " + pragma)


def _journal_mode_wal(dbapi_conn, budget_ms: int) -> None:
    """Put the file in WAL mode (readers never wait for the writer), if it is not already.

    Switching needs the file's exclusive lock. Two processes opening a new file at once (two
    workers, two ``db upgrade``s) can both find it empty and both ask; the first switches
    in a moment and may then begin a long transaction (a migration), which the second's
    switch would wait for, and fail after its busy timeout, although there is nothing left
    to switch. So the switch waits in short steps, looking again between them whether the
    file is in WAL mode by now, within ``budget_ms`` in all.
    """
    deadline = time.monotonic() + budget_ms / 1000
    dbapi_conn.execute("PRAGMA busy_timeout = 100")
    while True:
        try:
            mode = dbapi_conn.execute("PRAGMA journal_mode").fetchone()[0].lower()
            if mode not in ("wal", "memory"):  # memory: an in-memory database has no WAL
                dbapi_conn.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:  # the driver's OperationalError (sqlite3 or pysqlite3)
            message = str(exc).lower()
            if ("locked" not in message and "busy" not in message) \
                    or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def _on_sqlite_begin(conn) -> None:
    # A transaction that will write takes the write lock when it begins (IMMEDIATE), so it
    # waits its turn under the busy timeout. A deferred one that reads first and writes
    # later cannot wait: if another writer committed meanwhile, SQLite refuses the upgrade
    # at once ("database is locked"), which is how imports failed beside uploads.
    # ``sqlite_begin`` names the statement outright (the migration's lock is one).
    options = conn.get_execution_options()
    default = "BEGIN IMMEDIATE" if options.get("voicemap_write", False) else "BEGIN"
    conn.exec_driver_sql(options.get("sqlite_begin", default))


def make_engine(url: str, *, busy_timeout_ms: int | None = None, gdal: bool = True,
                mmap_bytes: int = SQLITE_MMAP_BYTES, wheels: bool = True) -> Engine:
    """An engine for ``url``: SpatiaLite for sqlite URLs, PostGIS for postgresql ones.

    ``gdal=False``: this process will not use GDAL, so SpatiaLite need not wait for it.
    ``wheels=False``: nor shapely and pyproj (the command line's GeoJSON export, which only
    streams text), so none of them is loaded before SpatiaLite (see ``libs``).
    ``mmap_bytes=0``: read the file with read() calls (a one-off scan, such as the CLI's
    export, then does not hold the file's pages in its resident memory).
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        if wheels:
            libs.load_wheel_libraries_first(gdal)
        # hide_parameters: the values of a failed statement (a child's name, a guardian's)
        # never reach an exception's text, a log line or a traceback.
        engine = create_engine(u, module=sqlite_dbapi(), hide_parameters=True)
        timeout = SQLITE_BUSY_TIMEOUT_MS if busy_timeout_ms is None else busy_timeout_ms
        event.listen(engine, "connect",
                     lambda dbapi_conn, record: _on_sqlite_connect(dbapi_conn, record, timeout))
        # Read the file through a shared memory map rather than read() calls into each
        # connection's small page cache: a nearest-k query touches a few dozen random pages.
        event.listen(engine, "connect", lambda dbapi_conn, _record: dbapi_conn.execute(
            f"PRAGMA mmap_size = {int(mmap_bytes)}"))
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    if u.get_backend_name() == "postgresql":
        if u.drivername == "postgresql":
            u = u.set(drivername="postgresql+psycopg")
        return create_engine(u, pool_pre_ping=True, pool_size=5, max_overflow=5,
                             hide_parameters=True)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or "
                     "postgresql+psycopg://...")


# --- schema migrations (Alembic) ---------------------------------------------------------

# The migration environment lives in the package (voicemap/migrations), so an installed
# package can migrate its database without an alembic.ini.
MIGRATIONS_PACKAGE = "voicemap:migrations"
BASELINE_REVISION = "0001_baseline"
# The tables of the last release without migrations (e0db993): a database holding them but
# no alembic_version table was made by that code and is adopted at the baseline.
BASELINE_TABLES = ("venues", "managers", "manager_venues", "clips")
# Key of the PostgreSQL advisory lock held around an upgrade (per database): "vmap" in ASCII.
MIGRATION_LOCK_KEY = 0x766D6170
# How long an SQLite upgrade waits for another process's write transaction (ms).
SQLITE_MIGRATION_BUSY_MS = 600_000


@dataclass
class UpgradeResult:
    before: str | None  # the revision found (None: empty, or made before migrations)
    after: str | None
    adopted: bool = False  # a database made before migrations, stamped at the baseline
    added: list[str] = field(default_factory=list)  # columns an adopted database lacked


class MigrationError(RuntimeError):
    """A database that cannot be migrated as it is."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code; ``connection`` is what env.py migrates."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS_PACKAGE)
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("file_template", "%%(rev)s")  # readable ids: versions/0002_x.py
    cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def script_directory() -> ScriptDirectory:
    """The revisions shipped with this package (read once per process)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = script_directory().get_current_head()
    assert head is not None, "no migrations found in voicemap/migrations/versions"
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in script_directory().walk_revisions()}


def current_revision(conn: Connection) -> str | None:
    """The revision recorded in the database; None when it has none (empty, or older)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def is_legacy(conn: Connection) -> bool:
    """Made by voicemap before migrations: voicemap's tables, but no revision recorded."""
    return current_revision(conn) is None and inspect(conn).has_table("venues")


def shipped_head() -> tuple[str, set[str]]:
    """This code's head revision and every revision it ships, read from the revision files'
    ``revision`` and ``down_revision`` lines instead of loading them through Alembic (about
    11 MB, more than the rest of a GeoJSON export). Where the files do not make one line of
    revisions (a merge still unwritten, two heads), Alembic answers. A test holds this equal
    to ``head_revision()`` and ``known_revisions()``."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (Path(__file__).parent / "migrations" / "versions").glob("*.py"):
        body = path.read_text(encoding="utf-8")
        rev = re.search(r"^revision(?:\s*:[^=]+)?\s*=\s*[\"']([^\"']+)[\"']", body, re.M)
        down = re.search(r"^down_revision(?:\s*:[^=]+)?\s*=\s*(.*)$", body, re.M)
        if rev is None or down is None:
            continue
        revisions.add(rev.group(1))
        parents.update(re.findall(r"[\"']([^\"']+)[\"']", down.group(1)))
    heads = revisions - parents
    if len(heads) != 1 or not parents <= revisions:
        return head_revision(), known_revisions()
    return heads.pop(), revisions


def check_current(conn: Connection) -> None:
    """Refuse a database that is not at this code's head, as ``voicemap db current`` would
    describe it: empty, made before migrations, behind (``voicemap db upgrade`` mends those
    three) or migrated by newer code.

    For commands that read the registry without building the app (the export), so without
    Alembic: one query of ``alembic_version``.
    :raises MigrationError: the database is not at head (the message is one line).
    """
    url = conn.engine.url.render_as_string(hide_password=True)
    head, known = shipped_head()
    current = None
    if inspect(conn).has_table("alembic_version"):
        current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if current == head:
        return
    if current is None:
        if inspect(conn).has_table("venues"):
            raise MigrationError(f"{url}: made before migrations: run `voicemap db upgrade` "
                                 "(it adopts it)")
        raise MigrationError(f"{url}: empty database: run `voicemap db upgrade` first")
    if current in known:
        raise MigrationError(f"{url}: at {current}, behind head {head}: run `voicemap db "
                             "upgrade`")
    raise MigrationError(f"{url}: at {current}, unknown to this version of voicemap, whose "
                         f"head is {head}: newer code migrated this database")


def check_exists(url: str) -> None:
    """Refuse a SpatiaLite URL whose file does not exist (a reader must not create one).

    :raises MigrationError: no such file.
    """
    u = make_url(url)
    if (u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:"
            and not Path(u.database).exists()):
        raise MigrationError(f"{u.database}: no such database file: run `voicemap db upgrade` "
                             "to create it")


def init_schema(engine: Engine) -> UpgradeResult:
    """Bring the database to the newest schema: ``upgrade(engine)`` (idempotent)."""
    return upgrade(engine)


def upgrade(engine: Engine, revision: str = "head") -> UpgradeResult:
    """Migrate the database to ``revision``, one process at a time.

    Creates everything on an empty database; a database made before migrations (voicemap's
    tables, no ``alembic_version``) is first stamped at the baseline (see ``_adopt_legacy``).
    Problems Alembic reports (an unknown revision) raise ``MigrationError``. The whole
    upgrade is one transaction, under a lock that a second process waits for (PostgreSQL:
    an advisory lock; SQLite: ``BEGIN IMMEDIATE``), after which it finds nothing to do.
    """
    from alembic import command
    from alembic.util import CommandError

    try:
        target = script_directory().get_revision(revision).revision \
            if revision != "head" else head_revision()
    except CommandError as exc:
        raise MigrationError(str(exc)) from None
    with engine.connect() as conn:
        before = current_revision(conn)
        conn.rollback()
        if before == target:  # the common case: up to date, no lock needed
            return UpgradeResult(before, before)
        with _migration_lock(conn):
            before = current_revision(conn)  # again, now that no one else migrates
            adopted = before is None and inspect(conn).has_table("venues")
            added = _adopt_legacy(conn) if adopted else []
            if adopted or before != target:
                cfg = alembic_config(conn)
                try:
                    if adopted:  # a database made before migrations
                        command.stamp(cfg, BASELINE_REVISION)
                    command.upgrade(cfg, target)
                except CommandError as exc:  # e.g. a revision this code does not know
                    raise MigrationError(f"cannot upgrade from {before} to {target}: "
                                         f"{exc}") from None
            after = current_revision(conn)
    return UpgradeResult(before, after, adopted, added)


def new_revision(engine: Engine | None, message: str) -> Path:
    """Write the next revision file (id ``NNNN_slug``) and return its path.

    With an engine, its operations are drafted by autogenerate: the models compared with
    that database, which must be at head.
    """
    from alembic import command

    numbers = [int(m.group(1)) for rev in script_directory().walk_revisions()
               if (m := re.match(r"(\d+)_", rev.revision))]
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")
    # alembic_version.version_num is VARCHAR(32).
    rev_id = f"{max(numbers, default=0) + 1:04d}_{slug}"[:32].rstrip("_")
    if engine is None:
        script = command.revision(alembic_config(), message, rev_id=rev_id)
    else:
        with engine.connect() as conn:
            script = command.revision(alembic_config(conn), message, rev_id=rev_id,
                                      autogenerate=True)
    script_directory.cache_clear()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def _adopt_legacy(conn: Connection) -> list[str]:
    """Ready a database made before migrations for the baseline stamp; what was added.

    It must hold the baseline's tables. Databases from before the last release may lack
    the two columns that ``_add_missing_columns`` used to add on start-up: they are added
    as it did (the only change made to an older database); ones the last release made
    are not touched.
    """
    import sqlalchemy as sa
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    inspector = inspect(conn)
    missing = [t for t in BASELINE_TABLES if not inspector.has_table(t)]
    if missing:
        raise MigrationError(
            f"the database has a venues table but no {', '.join(missing)} and no "
            "alembic_version: it was not made by voicemap, or only in part; refusing to "
            "migrate it")
    late = {"managers": sa.Column("session_epoch", sa.Integer, nullable=False,
                                  server_default="0"),
            "clips": sa.Column("synthetic", sa.Boolean, nullable=False,
                               server_default=sa.false())}
    added = []
    for table, column in late.items():
        if column.name not in {c["name"] for c in inspector.get_columns(table)}:
            Operations(MigrationContext.configure(conn)).add_column(table, column)
            added.append(f"{table}.{column.name}")
    return added


@contextmanager
def _migration_lock(conn: Connection) -> Iterator[None]:
    """Hold the database's migration lock and a transaction, which commits on success.

    PostgreSQL: a session-level advisory lock, taken before the transaction and released
    after it ends, so the next process sees the committed schema. SQLite: the transaction
    is ``BEGIN IMMEDIATE`` (the database's one write lock), waited for as long as a
    migration may take; foreign keys are off meanwhile (batch mode copies and drops
    tables, which would otherwise cascade) and checked before the commit.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        conn.commit()
        try:
            with conn.begin():
                yield
        finally:
            if conn.in_transaction():
                conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            conn.commit()
        return
    raw = conn.connection.driver_connection
    raw.execute("PRAGMA foreign_keys = OFF")  # only outside a transaction
    busy_before = raw.execute("PRAGMA busy_timeout").fetchone()[0]
    raw.execute(f"PRAGMA busy_timeout = {SQLITE_MIGRATION_BUSY_MS}")
    try:
        conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        with conn.begin():
            yield
            problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise MigrationError(f"the migration broke foreign keys: {problems[:10]}")
    finally:
        conn.execution_options(sqlite_begin="BEGIN")
        raw.execute("PRAGMA foreign_keys = ON")
        raw.execute(f"PRAGMA busy_timeout = {int(busy_before)}")


# --- Flask integration -------------------------------------------------------------------


def engine() -> Engine:
    """The current app's engine."""
    from flask import current_app

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
    from flask import g, has_request_context, request
    from sqlalchemy.orm import Session

    if "db_session" not in g:
        write = not has_request_context() or request.method not in ("GET", "HEAD", "OPTIONS")
        g.db_session = Session(writer(engine()) if write else engine(), expire_on_commit=False)
    return g.db_session


@contextmanager
def session_scope(eng: Engine | None = None) -> Iterator[Session]:
    """A writing session outside a request (scripts, tests): committed on success, rolled
    back on error.

    Service functions commit their own transactions (README, "Architecture"); this scope
    commits whatever building blocks (``venues.upsert``) leave open, and a service may commit
    inside it.
    """
    from sqlalchemy.orm import Session

    with Session(writer(eng or engine()), expire_on_commit=False) as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        session.commit()


def _close_session(_exc: BaseException | None) -> None:
    from flask import g

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
        app.config["DATABASE_URL"], busy_timeout_ms=app.config.get("SQLITE_BUSY_TIMEOUT_MS"),
        gdal=app.config.get("PRELOAD", True),
        mmap_bytes=app.config.get("SQLITE_MMAP_BYTES", SQLITE_MMAP_BYTES))
    app.teardown_appcontext(_close_session)
