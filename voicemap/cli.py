"""The ``voicemap`` command: one subcommand per task, calling the same service functions as
the HTTP API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy import Engine

# Heavy modules (Flask, SQLAlchemy, the audio and geodata stacks) are imported inside the
# commands that use them: ``voicemap --help`` loads click and little else, and ``voicemap
# export`` builds no app at all: it reads the configuration (``config.load``), opens an engine
# and streams SQL-built GeoJSON text (``feed``), so a GeoJSON export loads neither Flask, the
# ORM models, GeoAlchemy2, Folium, pandas nor GDAL (tests/test_cli_imports.py).

# exchange.FORMATS, spelled out so that building the command line imports nothing heavy
# (tests/test_cli_imports.py holds the two equal).
EXPORT_FORMATS = ("geojson", "gpkg", "csv", "shp")
# Rows the export fetches at a time: 2000 (the API's batch) held 5 MB more at the peak of a
# 1,000,000-venue export (66 MB against 61 MB) for no measurable speed.
EXPORT_BATCH = 200


class AppContext:
    """Builds the app on first use, so ``--help`` needs no database; or, for a command that
    only reads the registry, just an engine (``reader``)."""

    def __init__(self, database_url: str | None) -> None:
        self.database_url = database_url
        self._app: Flask | None = None
        self._settings: dict | None = None
        self._engine: Engine | None = None
        # Whether this command may use GDAL: it must then load before SpatiaLite (libs.py).
        self.gdal = False

    @property
    def app(self) -> Flask:
        if self._app is None:
            from . import create_app

            # fsck shows temporaries, the server sweeps them; no Folium, GDAL only if asked;
            # a command reads a SpatiaLite file once, so not through a memory map (whose
            # pages would count as its resident memory).
            config = {"SWEEP_TEMPORARIES": False, "PRELOAD": self.gdal, "SQLITE_MMAP_BYTES": 0}
            if self.database_url:
                config["DATABASE_URL"] = self.database_url
            self._app = create_app(config)
        return self._app

    @property
    def settings(self) -> dict:
        """The configuration the app would have (defaults, VOICEMAP_* variables,
        --database-url), without building it."""
        if self._settings is None:
            from . import config

            self._settings = config.load(
                {"DATABASE_URL": self.database_url} if self.database_url else None)
        return self._settings

    def reader(self, *, gdal: bool, wheels: bool) -> Engine:
        """An engine on the configured database, without the app: for a command that only
        reads the registry. The database must exist and be at this code's head revision
        (``db.check_current``, on the caller's connection). ``gdal`` and ``wheels``: whether
        this command uses GDAL, shapely or pyproj (``db.make_engine``)."""
        from . import db

        url = self.settings["DATABASE_URL"]
        db.check_exists(url)
        # As for the app: read once, so not through a memory map (see ``app``).
        self._engine = db.make_engine(url, busy_timeout_ms=self.settings["SQLITE_BUSY_TIMEOUT_MS"],
                                      gdal=gdal, wheels=wheels, mmap_bytes=0)
        return self._engine

    def close(self) -> None:
        if self._app is not None:
            self._app.extensions["voicemap.engine"].dispose()
        if self._engine is not None:
            self._engine.dispose()


pass_ctx = click.make_pass_decorator(AppContext)


def run(fn):
    """Run ``fn`` in the app context; expected failures become a message and exit status 1.

    Expected means the user's input (VoicemapError) or the machine's state: a full disk, a
    database that is down or busy, a file that cannot be read. Each is one line, never a
    traceback (whose SQL parameters could carry a child's data).
    """
    try:
        return fn()
    except click.ClickException:
        raise
    except Exception as exc:
        from . import db, exchange
        from .errors import translate

        if isinstance(exc, db.SpatialiteUnavailable | db.MigrationError):
            raise click.ClickException(str(exc)) from None
        known = translate(exc)
        if known is None and isinstance(exc, OSError):
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None
        if known is None:
            raise
        message = known.message
        for problem in known.details.get("problems", []):
            message += "\n  " + str(exchange.Problem(**problem))
        raise click.ClickException(message) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--database-url", envvar="VOICEMAP_DATABASE_URL", default=None,
              help="sqlite:///PATH (SpatiaLite) or postgresql+psycopg://... (PostGIS). "
                   "Default: the SpatiaLite file in the instance folder.")
@click.version_option(package_name="voicemap")
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """voicemap: a voice map of child-friendly venues."""
    ctx.obj = AppContext(database_url)
    ctx.call_on_close(ctx.obj.close)


@main.command("init-db")
@pass_ctx
def init_db(obj: AppContext) -> None:
    """Create the database schema (and spatial metadata) if missing: ``db upgrade``."""
    _upgrade(obj, "head")


@main.group("db")
def db_group() -> None:
    """Schema migrations (Alembic): upgrade, current, history, revision."""


def _url(obj: AppContext) -> str:
    from . import db

    return db.engine().url.render_as_string(hide_password=True)


def _upgrade(obj: AppContext, revision: str) -> None:
    from . import db

    def go():
        with obj.app.app_context():
            result = db.upgrade(db.engine(), revision)
            if result.adopted:
                click.echo(f"adopted a database made before migrations: stamped "
                           f"{db.BASELINE_REVISION}, " + (
                               "added " + ", ".join(result.added) if result.added
                               else "schema unchanged"))
            if result.before == result.after:
                click.echo(f"{_url(obj)}: already at {result.after}, nothing to do")
            else:
                click.echo(f"{_url(obj)}: upgraded from {result.before or 'empty'} to "
                           f"{result.after}")
    run(go)


@db_group.command("upgrade")
@click.argument("revision", default="head")
@pass_ctx
def db_upgrade(obj: AppContext, revision: str) -> None:
    """Migrate the database to REVISION (default: head), creating it if empty.

    A database made before migrations is adopted: stamped at the baseline, unchanged.
    One process at a time: another waits, then finds nothing to do.
    """
    _upgrade(obj, revision)


@db_group.command("current")
@pass_ctx
def db_current(obj: AppContext) -> None:
    """Print the database's revision (and whether it is the newest)."""
    from . import db

    def go():
        with obj.app.app_context(), db.engine().connect() as conn:
            current = db.current_revision(conn)
            legacy = current is None and db.is_legacy(conn)
        if current is None:
            click.echo("none: made before migrations (`voicemap db upgrade` adopts it)"
                       if legacy else "none: empty database")
        elif current == db.head_revision():
            click.echo(f"{current} (head)")
        elif current in db.known_revisions():
            click.echo(f"{current} (behind: head is {db.head_revision()}; run `voicemap db "
                       "upgrade`)")
        else:
            click.echo(f"{current} (unknown to this version of voicemap, whose head is "
                       f"{db.head_revision()}: newer code migrated this database)")
    run(go)


@db_group.command("history")
def db_history() -> None:
    """List the revisions, newest first."""
    from . import db

    head = db.head_revision()
    for script in db.script_directory().walk_revisions():
        doc = (script.doc or "").strip().splitlines()[0] if script.doc else ""
        mark = " (head)" if script.revision == head else ""
        click.echo(f"{script.revision}{mark}: {doc}")


@db_group.command("revision")
@click.option("-m", "--message", required=True, help="What the revision does (short).")
@click.option("--autogenerate", is_flag=True,
              help="Draft operations from the models compared with the database (which must "
                   "be at head). Always review the draft.")
@pass_ctx
def db_revision(obj: AppContext, message: str, autogenerate: bool) -> None:
    """Write a new revision file, NNNN_slug.py, in voicemap/migrations/versions."""
    from . import db

    def go():
        path = db.new_revision(db.engine() if autogenerate else None, message)
        click.echo(f"wrote {path}")
    with obj.app.app_context():
        run(go)


@main.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--crs", "datum", type=click.Choice(["wgs84", "gcj02"]), default="wgs84",
              show_default=True, help="Datum of the file's longitude/latitude.")
@click.option("--skip-invalid", is_flag=True,
              help="Import the valid features and report the others, instead of refusing "
                   "the whole file.")
@pass_ctx
def import_(obj: AppContext, path: Path, datum: str, skip_invalid: bool) -> None:
    """Import venues from GeoJSON, GeoPackage, Shapefile or CSV (lon/lat columns).

    Every feature is validated; without --skip-invalid one invalid feature means nothing
    is imported. Venues are upserted by id, so importing the same file twice changes
    nothing.
    """
    from . import db, venues

    obj.gdal = path.suffix.lower() not in (".geojson", ".json")  # GDAL reads the others

    def go():
        with obj.app.app_context():
            db.init_schema(db.engine())
            report = venues.import_path(
                db.get_session(), path, datum=datum, skip_invalid=skip_invalid,
                service_area=obj.app.config["SERVICE_AREA"])
            for problem in report.problems:
                click.echo(f"skipped {problem}", err=True)
            click.echo(f"{report.total} features: {report.inserted} inserted, "
                       f"{report.updated} updated, {report.unchanged} unchanged, "
                       f"{report.skipped} skipped")
    run(go)


@main.command("export")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="geojson",
              show_default=True)
@click.option("--category", multiple=True, help="Only these categories (repeatable).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="File to write ('-' for standard output, GeoJSON only).")
@pass_ctx
def export(obj: AppContext, fmt: str, category: tuple[str, ...], output: Path) -> None:
    """Export the registry (WGS-84) as GeoJSON, GeoPackage, CSV or Shapefile.

    Every format carries the same fields and the data dictionary (README); files are 0644.
    """
    from . import db, exchange, feed

    def go():
        if str(output) == "-" and fmt != "geojson":
            raise click.UsageError("only GeoJSON can be written to standard output")
        # GDAL writes GeoPackages and Shapefiles; pyproj writes a CSV's .prj; GeoJSON is
        # text from the database, written as it streams.
        engine = obj.reader(gdal=fmt in ("gpkg", "shp"), wheels=fmt != "geojson")
        with engine.connect() as conn:
            db.check_current(conn)
            metadata = feed.dictionary(conn, obj.settings.get("DATA_LICENCE"))
            features = feed.iter_features(conn, category=category, batch=EXPORT_BATCH)
            if str(output) == "-":
                n = exchange.write_geojson(features, sys.stdout, metadata)
            else:
                n = exchange.write(features, output, fmt, metadata)
        click.echo(f"exported {n} venues to {output}", err=str(output) == "-")
    run(go)


@main.command("nearest")
@click.argument("lat", type=float)
@click.argument("lon", type=float)
@click.option("-k", default=5, show_default=True, help="How many venues (1-100).")
@click.option("--category", multiple=True, help="Only these categories (repeatable).")
@click.option("--max-distance", "max_distance_m", type=float, default=None,
              help="Only venues within this many metres.")
@click.option("--crs", "datum", type=click.Choice(["wgs84", "gcj02"]), default="wgs84",
              show_default=True, help="Datum of LAT LON (gcj02: Gaode/Tencent/WeChat).")
@click.option("--json", "as_json", is_flag=True, help="Print the GeoJSON FeatureCollection.")
@pass_ctx
def nearest(obj: AppContext, lat: float, lon: float, k: int, category: tuple[str, ...],
            max_distance_m: float | None, datum: str, as_json: bool) -> None:
    """The K venues nearest LAT LON by geodesic distance (results in WGS-84)."""
    from . import db, venues

    def go():
        with obj.app.app_context():
            features = venues.nearest(db.get_session(), lon, lat, k=k, category=category,
                                      max_distance_m=max_distance_m, datum=datum)
        if as_json:
            click.echo(venues.feature_collection(features))
            return
        for feature in venues.parse(features):
            p = feature["properties"]
            click.echo(f"{p['distance_m']:>10.1f} m  {p['id']:<40} {p['category']:<16} "
                       f"{p['name_zh']} / {p['name_en']}")
    run(go)


# --- managers, clips and review ----------------------------------------------------------


def _store_and_limits(app: Flask):
    from . import audio

    cfg = app.config
    return app.extensions["voicemap.media"], audio.Limits(
        max_bytes=cfg["MAX_UPLOAD_BYTES"], max_duration_s=cfg["MAX_DURATION_S"],
        min_duration_s=cfg["MIN_DURATION_S"])


@main.command("create-manager")
@click.argument("name")
@click.option("--venue", "venue_ids", multiple=True, help="A venue they manage (repeatable).")
@click.option("--admin", is_flag=True, help="An administrator: all venues, and review.")
@click.option("--juror", is_flag=True, help="A juror of a campaign (with --campaign): "
              "scores its works, blind.")
@click.option("--campaign", "campaign_id", help="The campaign a --juror judges.")
@pass_ctx
def create_manager(obj: AppContext, name: str, venue_ids: tuple[str, ...], admin: bool,
                   juror: bool, campaign_id: str | None) -> None:
    """Create a venue manager (or administrator, or juror) and print their token once.

    The token is alone on the last line, so scripts can capture it with ``tail -n 1``; only
    its hash is stored, so it cannot be shown again.
    """
    from . import auth, db

    if juror != bool(campaign_id):
        raise click.UsageError("--juror and --campaign go together")

    def go():
        with obj.app.app_context():
            manager, token = auth.create_manager(db.get_session(), name, list(venue_ids), admin,
                                                 juror_campaign=campaign_id)
            role = ("administrator" if admin else f"juror of campaign {campaign_id}" if juror
                    else "manager of " + ", ".join(venue_ids))
            click.echo(f"created {role} {manager.name!r} (id {manager.id}); their token, "
                       "shown only now:")
        click.echo(token)
    run(go)


@main.group()
def managers() -> None:
    """List, revoke and rotate manager tokens."""


@managers.command("list")
@pass_ctx
def managers_list(obj: AppContext) -> None:
    """Every manager: id, name, role and venues, when their token was issued, and whether it
    is revoked."""
    from . import auth, db, policy

    def go():
        with obj.app.app_context():
            found = auth.list_managers(db.get_session())
            for m in found:
                role = "admin" if policy.is_admin(m) else "manager of " + ",".join(
                    sorted(v.id for v in m.venues))
                if policy.is_juror(m):
                    role = f"juror of {m.juror_campaign_id}"
                issued = (m.token_issued_at or m.created_at).strftime("%Y-%m-%d %H:%M")
                state = ("revoked " + m.revoked_at.strftime("%Y-%m-%d %H:%M")
                         if m.revoked_at else "active")
                click.echo(f"{m.id:>5}  {m.name:<24} {state:<24} token {issued}  {role}")
            click.echo(f"{len(found)} manager(s)", err=True)
    run(go)


@managers.command("revoke")
@click.argument("who")
@pass_ctx
def managers_revoke(obj: AppContext, who: str) -> None:
    """Revoke WHO's token (a name or an id): the API and /manage refuse it at once."""
    from . import auth, db

    def go():
        with obj.app.app_context():
            session = db.get_session()
            manager = auth.find_manager(session, who)
            auth.revoke(session, manager)
            click.echo(f"revoked the token of {manager.name!r} (id {manager.id}); their "
                       "/manage sessions have ended")
    run(go)


@managers.command("rotate")
@click.argument("who")
@pass_ctx
def managers_rotate(obj: AppContext, who: str) -> None:
    """Give WHO (a name or an id) a new token and print it once; the old one stops working.

    Like create-manager, the token is alone on the last line.
    """
    from . import auth, db

    def go():
        with obj.app.app_context():
            session = db.get_session()
            manager = auth.find_manager(session, who)
            token = auth.rotate(session, manager)
            click.echo(f"new token for {manager.name!r} (id {manager.id}), shown only now; "
                       "the old one no longer works:")
        click.echo(token)
    run(go)


@main.command("add-clip")
@click.argument("venue_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--lang", required=True, help="Language code: zh, en, ...")
@click.option("--narrator", "narrator_name", required=True, help="The child's first name only.")
@click.option("--age", "narrator_age", required=True, type=int, help="The child's age.")
@click.option("--transcript", required=True, help="What the child says (shown as text).")
@click.option("--consent-by", required=True, help="The parent or guardian who consented.")
@click.option("--title", default=None)
@click.option("--publish", is_flag=True, help="Publish at once instead of queueing for review.")
@pass_ctx
def add_clip(obj: AppContext, venue_id: str, file: Path, publish: bool, **form) -> None:
    """Attach a recording to a venue through the same pipeline as uploads."""
    from . import clips, db

    def go():
        store, limits = _store_and_limits(obj.app)
        with obj.app.app_context():
            fields = clips.check_fields({**form, "consent": "true"})
            clip = clips.attach(db.get_session(), store, venue_id, file, fields, manager=None,
                                limits=limits, status="published" if publish else "pending")
            click.echo(f"clip {clip.id}: {clip.status}, {clip.duration_ms / 1000:.1f} s, "
                       f"{clip.loudness_lufs:.1f} LUFS")
    run(go)


@main.group()
def review() -> None:
    """Review clips waiting for publication."""


@review.command("list")
@click.option("--all", "show_all", is_flag=True, help="Every clip, not only pending ones.")
@pass_ctx
def review_list(obj: AppContext, show_all: bool) -> None:
    """List pending clips (oldest first)."""
    from . import clips, db

    def go():
        with obj.app.app_context():
            session = db.get_session()
            found = clips.every_clip(session) if show_all else clips.pending(session)
            for c in found:
                who = "synthetic" if c.synthetic else f"{c.narrator_name}, {c.narrator_age}"
                click.echo(f"{c.id}  {c.status:<9} {c.venue_id:<32} {c.lang:<5} "
                           f"{c.duration_ms / 1000:>6.1f} s  {who}  {c.transcript[:40]!r}")
            click.echo(f"{len(found)} clip(s)", err=True)
    run(go)


@review.command("publish")
@click.argument("clip_id")
@pass_ctx
def review_publish(obj: AppContext, clip_id: str) -> None:
    """Publish a clip: families can hear it."""
    from . import clips, db

    def go():
        with obj.app.app_context():
            clips.review(db.get_session(), clip_id, None, publish=True)
            click.echo(f"clip {clip_id} published")
    run(go)


@review.command("reject")
@click.argument("clip_id")
@click.option("--reason", required=True, help="Why, for the venue manager.")
@pass_ctx
def review_reject(obj: AppContext, clip_id: str, reason: str) -> None:
    """Reject a clip, with a reason."""
    from . import clips, db

    def go():
        with obj.app.app_context():
            clips.review(db.get_session(), clip_id, None, publish=False, reason=reason)
            click.echo(f"clip {clip_id} rejected")
    run(go)


@main.command("delete-clip")
@click.argument("clip_id")
@pass_ctx
def delete_clip(obj: AppContext, clip_id: str) -> None:
    """Delete a clip everywhere (consent withdrawn): row, published file, archived original."""
    from . import clips, db

    def go():
        store, _ = _store_and_limits(obj.app)
        with obj.app.app_context():
            clips.delete(db.get_session(), store, clip_id, None)
            click.echo(f"clip {clip_id} deleted")
    run(go)


@main.command("fsck")
@click.option("--repair", is_flag=True, help="Remove orphan files, and rows whose files are gone.")
@pass_ctx
def fsck(obj: AppContext, repair: bool) -> None:
    """Check that media files and the rows naming them (clips, works) match; exit 1 if they
    do not (and not repaired)."""
    from . import clips, db

    def go():
        store, _ = _store_and_limits(obj.app)
        with obj.app.app_context():
            report = clips.fsck(db.get_session(), store, repair=repair)
        for kind, sha in report.orphan_files:
            click.echo(f"orphan file: {store.describe(kind, sha)}")
        for owner, kind, sha in report.missing_files:
            click.echo(f"{owner}: {kind} file missing ({store.describe(kind, sha)})")
        for path in report.stale_temporaries:
            click.echo(f"abandoned temporary (an interrupted upload): {path}")
        if report.clean:
            click.echo("media and database agree")
        elif report.repaired:
            click.echo("repaired")
        else:
            raise click.ClickException("media and database disagree; run with --repair")
    run(go)


@main.command("backup")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The archive to write.")
@click.option("--verify", "verify_path", type=click.Path(dir_okay=False, exists=True,
                                                         path_type=Path),
              help="Check an archive against its manifest instead of writing one.")
@pass_ctx
def backup_command(obj: AppContext, output: Path | None, verify_path: Path | None) -> None:
    """Write one archive: a consistent database snapshot and every media file it refers to,
    with a manifest of checksums (the service keeps running). Or check one with --verify."""
    from . import backup, db

    def go():
        if verify_path is not None:
            report = backup.verify(verify_path)
            for problem in report.problems:
                click.echo(problem, err=True)
            if not report.ok:
                raise click.ClickException(f"{verify_path}: {len(report.problems)} problem(s)")
            m = report.manifest
            click.echo(f"{verify_path}: intact ({report.members} members, {m['backend']}, "
                       f"taken {m['created_at']}, rows {m['rows']})")
            return
        if output is None:
            raise click.UsageError("give -o FILE (or --verify FILE)")
        with obj.app.app_context():
            report = backup.backup(db.engine(), obj.app.extensions["voicemap.media"], output)
        for item in report.withdrawn:
            click.echo(f"left out (deleted while the backup ran): {item}", err=True)
        click.echo(f"wrote {output}: {report.backend} snapshot ({report.rows}), "
                   f"{report.files} media files ({report.bytes} bytes) in "
                   f"{report.seconds:.1f} s")
    run(go)


@main.command("restore")
@click.argument("archive", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@pass_ctx
def restore_command(obj: AppContext, archive: Path) -> None:
    """Restore an archive into an empty database and an empty media store."""
    from . import backup, db

    def go():
        with obj.app.app_context():
            result = backup.restore(db.engine(), obj.app.extensions["voicemap.media"], archive)
        click.echo(f"restored {archive}: rows {result['rows']}, {result['files']} media files"
                   + (f"; dropped {result['dropped_withdrawn']} row(s) withdrawn during the "
                      "backup" if result["dropped_withdrawn"] else ""))
    run(go)


@main.command("demo-clips")
@click.option("--per-category", default=2, show_default=True,
              help="How many venues of each category get placeholder narrations.")
@pass_ctx
def demo_clips(obj: AppContext, per_category: int) -> None:
    """Add clearly labelled synthetic narrations (espeak-ng, zh and en) to some venues."""
    from . import db, demo

    def go():
        store, limits = _store_and_limits(obj.app)
        with obj.app.app_context():
            made = demo.make_clips(db.get_session(), store, limits, per_category)
            click.echo(f"{len(made)} synthetic demo clip(s) added")
    run(go)


@main.command("posters")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Directory for the posters (created if missing).")
@pass_ctx
def posters(obj: AppContext, output: Path) -> None:
    """Write a printable poster per venue: names in both languages and a QR code to its page.

    The QR codes point at VOICEMAP_PUBLIC_URL, which must be set.
    """
    from . import posters as poster_module

    def go():
        with obj.app.app_context():
            written = poster_module.write_posters(obj.app, output)
        click.echo(f"wrote {len(written)} poster file(s) to {output}")
    run(go)


@main.command("demo-activities")
@pass_ctx
def demo_activities(obj: AppContext) -> None:
    """Add clearly labelled sample activities and information pages (idempotent)."""
    from . import db, demo

    def go():
        with obj.app.app_context():
            session = db.get_session()
            acts = demo.make_activities(session)
            pages = demo.make_articles(session)
            click.echo(f"{len(acts)} sample activit{'y' if len(acts) == 1 else 'ies'} and "
                       f"{len(pages)} sample information page(s) added")
    run(go)


# --- campaigns and children's works (their commands live in cli_works) ---------------------
from . import cli_works  # noqa: E402,F401  registers its commands on main

if __name__ == "__main__":  # pragma: no cover
    main()
