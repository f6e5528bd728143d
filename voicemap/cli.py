"""The ``voicemap`` command: one subcommand per task, calling the same service functions as
the HTTP API."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask

from . import create_app, db, exchange, venues
from .errors import VoicemapError


class AppContext:
    """Builds the app on first use, so ``--help`` needs no database."""

    def __init__(self, database_url: str | None) -> None:
        self.database_url = database_url
        self._app: Flask | None = None

    @property
    def app(self) -> Flask:
        if self._app is None:
            self._app = create_app({"DATABASE_URL": self.database_url}
                                   if self.database_url else None)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.extensions["voicemap.engine"].dispose()


pass_ctx = click.make_pass_decorator(AppContext)


def run(fn):
    """Run ``fn`` in the app context; expected failures become a message and exit status 1."""
    try:
        return fn()
    except VoicemapError as exc:
        message = exc.message
        for problem in exc.details.get("problems", []):
            message += "\n  " + str(exchange.Problem(**problem))
        raise click.ClickException(message) from None
    except db.SpatialiteUnavailable as exc:
        raise click.ClickException(str(exc)) from None


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
    """Create the database schema (and spatial metadata) if missing."""
    def go():
        with obj.app.app_context():
            db.init_schema(db.engine())
            click.echo(f"schema ready in {db.engine().url.render_as_string(hide_password=True)}")
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
    def go():
        with obj.app.app_context():
            db.init_schema(db.engine())
            with db.session_scope() as session:
                report = venues.import_path(
                    session, path, datum=datum, skip_invalid=skip_invalid,
                    service_area=obj.app.config["SERVICE_AREA"])
            for problem in report.problems:
                click.echo(f"skipped {problem}", err=True)
            click.echo(f"{report.total} features: {report.inserted} inserted, "
                       f"{report.updated} updated, {report.unchanged} unchanged, "
                       f"{report.skipped} skipped")
    run(go)


@main.command("export")
@click.option("--format", "fmt", type=click.Choice(exchange.FORMATS), default="geojson",
              show_default=True)
@click.option("--category", multiple=True, help="Only these categories (repeatable).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="File to write ('-' for standard output, GeoJSON only).")
@pass_ctx
def export(obj: AppContext, fmt: str, category: tuple[str, ...], output: Path) -> None:
    """Export the registry (WGS-84) as GeoJSON, GeoPackage, CSV or Shapefile."""
    def go():
        with obj.app.app_context(), db.engine().connect() as conn:
            features = venues.iter_features(conn, category=category)
            if str(output) == "-":
                if fmt != "geojson":
                    raise click.UsageError("only GeoJSON can be written to standard output")
                n = exchange.write_geojson(features, sys.stdout)
            else:
                n = exchange.write(features, output, fmt)
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


if __name__ == "__main__":  # pragma: no cover
    main()
