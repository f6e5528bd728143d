"""Light commands stay light: what ``voicemap --help`` and a GeoJSON export import.

Each runs in a fresh interpreter, which then lists the modules it loaded. The export builds
no app: it reads the configuration as the app would (``config.load``) and checks the
database's revision as Alembic would (``db.shipped_head``); tests hold each equal to the
heavy original.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import feature, load, random_features

from voicemap import cli, config, create_app, db, exchange, venues

AUDIO_AND_GEODATA = ("numpy", "pydub", "geopandas", "pandas", "folium", "shapely", "pyproj",
                     "pyogrio")
SCRIPT = """
import json, sys
from voicemap.cli import main
try:
    main(sys.argv[1:], prog_name="voicemap", standalone_mode=False)
finally:
    print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def loaded_by(*args: str, env: dict[str, str] | None = None) -> set[str]:
    """Every module (packages and their submodules) the command loaded."""
    result = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True,
                            text=True, timeout=120, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


def test_help_loads_neither_audio_nor_geodata_nor_the_app():
    loaded = loaded_by("--help")
    for heavy in (*AUDIO_AND_GEODATA, "flask", "sqlalchemy"):
        assert heavy not in loaded


def test_export_to_geojson_loads_no_map_no_audio_no_gdal(app, tmp_path):
    load(app, [feature("light-1", 116.39, 39.91)])
    out = tmp_path / "venues.geojson"
    loaded = loaded_by("--database-url", app.config["DATABASE_URL"], "export", "-o", str(out))
    for heavy in ("pydub", "folium", "pandas", "geopandas", "pyogrio"):
        assert heavy not in loaded
    ids = [f["properties"]["id"] for f in json.loads(out.read_text())["features"]]
    assert ids == ["light-1"]


def test_export_to_geojson_builds_no_app_and_loads_no_orm(app, tmp_path):
    """Under 64 MB at 1,000,000 venues (bench/bench_cli.py): no Flask, no ORM models, no
    GeoAlchemy2, no Alembic, and no pyproj or shapely before SpatiaLite."""
    load(app, [feature("light-1", 116.39, 39.91)])
    out = tmp_path / "venues.geojson"
    loaded = loaded_by("--database-url", app.config["DATABASE_URL"], "export", "-o", str(out))
    assert "voicemap.feed" in loaded  # the export did run, through the light path
    for heavy in ("flask", "werkzeug", "jinja2", "geoalchemy2", "voicemap.models",
                  "voicemap.venues", "sqlalchemy.orm", "alembic", "pyproj", "shapely",
                  "numpy"):
        assert heavy not in loaded
    assert json.loads(out.read_text())["features"][0]["id"] == "light-1"


def test_light_export_writes_what_the_app_writes(app, tmp_path):
    """The command line (no app) and the app's own path (API, tests) write the same bytes,
    licence and data dictionary included."""
    load(app, random_features(25))
    licence = "CC BY 4.0 (署名)"
    out = tmp_path / "cli.geojson"
    loaded_by("--database-url", app.config["DATABASE_URL"], "export", "-o", str(out),
              env={"VOICEMAP_DATA_LICENCE": json.dumps(licence)})
    expected = tmp_path / "app.geojson"
    with app.app_context(), db.engine().connect() as conn:
        exchange.write(venues.iter_features(conn), expected, "geojson",
                       venues.dictionary(conn, licence))
    assert json.loads(out.read_text())["metadata"]["licence"] == licence
    assert len(json.loads(out.read_text())["features"]) == 25
    assert out.read_bytes() == expected.read_bytes()


def test_light_settings_are_the_apps(monkeypatch, tmp_path):
    for key, value in {"VOICEMAP_DATA_LICENCE": "CC0", "VOICEMAP_SQLITE_BUSY_TIMEOUT_MS": "1234",
                       "VOICEMAP_RATELIMIT_ENABLED": "false", "VOICEMAP_SECRET_KEY": "s",
                       "VOICEMAP_SERVICE_AREA": "116,39,117,40.5",
                       "VOICEMAP_NESTED__INNER": "[1, 2]"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("VOICEMAP_DATABASE_URL", raising=False)
    overrides = {"MEDIA_DIR": str(tmp_path / "media"), "PRELOAD": False}
    app = create_app(overrides)
    light = config.load(overrides)
    assert config.instance_path() == app.instance_path
    assert light["DATABASE_URL"] == app.config["DATABASE_URL"]  # the instance folder's file
    assert light["DATA_LICENCE"] == "CC0"
    assert light["SQLITE_BUSY_TIMEOUT_MS"] == 1234
    assert light["NESTED"] == {"INNER": [1, 2]}
    for key, value in light.items():
        assert app.config[key] == value, key
    given = config.load({"DATABASE_URL": "sqlite:////elsewhere.sqlite"})
    assert given["DATABASE_URL"] == "sqlite:////elsewhere.sqlite"


def test_shipped_head_is_alembics():
    head, known = db.shipped_head()
    assert head == db.head_revision()
    assert known == db.known_revisions()


def test_export_formats_are_the_exchange_formats():
    assert cli.EXPORT_FORMATS == exchange.FORMATS


def test_venue_fields_are_the_models_columns():
    from voicemap import fields
    from voicemap.models import Venue

    columns = set(Venue.__table__.columns.keys())
    assert set(fields.VENUE_FIELDS) <= columns
    assert columns - set(fields.VENUE_FIELDS) == {"id", "geom", "updated_at"}
