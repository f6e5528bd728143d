"""The voicemap command on both backends: messages, exit codes, files."""

from __future__ import annotations

import json

from click.testing import CliRunner
from helpers import feature, random_features, write
from sqlalchemy import text

from voicemap import db
from voicemap.cli import main


def test_import_reports_counts_and_is_idempotent(runner, tmp_path):
    path = write(tmp_path / "v.geojson", random_features(12))
    first = runner.invoke("import", str(path))
    assert first.exit_code == 0, first.output
    assert "12 inserted" in first.output
    second = runner.invoke("import", str(path))
    assert "0 inserted, 0 updated, 12 unchanged" in second.output


def test_import_refuses_invalid_file_with_reasons(runner, tmp_path):
    path = write(tmp_path / "v.geojson", [feature("ok", 116.3, 39.9),
                                          feature("bad", 116.3, 39.9, "zoo")])
    result = runner.invoke("import", str(path))
    assert result.exit_code == 1
    assert "nothing was imported" in result.output
    assert "feature 1 (bad): unknown category 'zoo'" in result.output
    listing = runner.invoke("export", "-o", "-")
    assert json.loads(listing.stdout)["features"] == []


def test_import_skip_invalid(runner, tmp_path):
    path = write(tmp_path / "v.geojson", [feature("ok", 116.3, 39.9),
                                          feature("bad", 116.3, 39.9, "zoo")])
    result = runner.invoke("import", str(path), "--skip-invalid")
    assert result.exit_code == 0
    assert "1 inserted" in result.output
    assert "1 skipped" in result.output


def test_import_missing_file(runner, tmp_path):
    result = runner.invoke("import", str(tmp_path / "nope.geojson"))
    assert result.exit_code == 1
    assert "no such file" in result.output


def test_nearest_prints_nearest_first(runner, tmp_path):
    runner.invoke("import", str(write(tmp_path / "v.geojson", [
        feature("near", 116.40, 39.90), feature("far", 116.50, 39.90, "park")])))
    result = runner.invoke("nearest", "39.9", "116.401", "-k", "2")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert "near" in lines[0]
    assert "far" in lines[1]
    only_parks = runner.invoke("nearest", "39.9", "116.401", "--category", "park", "--json")
    assert [f["id"] for f in json.loads(only_parks.output)["features"]] == ["far"]


def test_nearest_bad_k_is_a_clear_error(runner):
    result = runner.invoke("nearest", "39.9", "116.4", "-k", "0")
    assert result.exit_code == 1
    assert "k must be between 1 and 100" in result.output


def test_export_formats_and_category(runner, tmp_path):
    runner.invoke("import", str(write(tmp_path / "v.geojson", random_features(18))))
    for fmt, name in (("geojson", "o.geojson"), ("gpkg", "o.gpkg"), ("csv", "o.csv"),
                      ("shp", "o.shp")):
        result = runner.invoke("export", "--format", fmt, "-o", str(tmp_path / name))
        assert result.exit_code == 0, result.output
        assert "exported 18 venues" in result.output
    parks = runner.invoke("export", "--category", "park", "-o", str(tmp_path / "p.geojson"))
    assert parks.exit_code == 0
    doc = json.loads((tmp_path / "p.geojson").read_text())
    assert doc["features"]
    assert {f["properties"]["category"] for f in doc["features"]} == {"park"}
    bad = runner.invoke("export", "--category", "zoo", "-o", str(tmp_path / "z.geojson"))
    assert bad.exit_code == 1
    assert "unknown category" in bad.output
    assert not (tmp_path / "z.geojson").exists()


def test_posters_need_a_public_url_then_write_one_per_venue(runner, tmp_path):
    runner.invoke("import", str(write(tmp_path / "v.geojson", random_features(3))))
    out = tmp_path / "posters"
    refused = runner.invoke("posters", "-o", str(out))
    assert refused.exit_code == 1
    assert "VOICEMAP_PUBLIC_URL" in refused.output
    made = runner.invoke("posters", "-o", str(out),
                         env={"VOICEMAP_PUBLIC_URL": "https://voicemap.example.org"})
    assert made.exit_code == 0, made.output
    pages = sorted(p.name for p in out.iterdir())
    assert {"v00000.html", "v00001.html", "v00002.html"} <= set(pages)
    assert "https://voicemap.example.org/venues/v00001" in (out / "v00001.html").read_text()


def test_export_refuses_a_database_not_at_head_in_one_line(runner, app, tmp_path):
    out = tmp_path / "o.geojson"
    engine = app.extensions["voicemap.engine"]
    head = db.head_revision()
    older = sorted(db.known_revisions() - {head})[-1]
    try:
        for version, says in ((older, f"at {older}, behind head {head}: run `voicemap db "
                                      "upgrade`"),
                              ("9999_newer", "unknown to this version of voicemap")):
            with engine.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": version})
            result = runner.invoke("export", "-o", str(out))
            assert result.exit_code == 1
            assert says in result.output
            assert len(result.output.strip().splitlines()) == 1, result.output
            assert not out.exists()
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert runner.invoke("export", "-o", str(out)).exit_code == 0


def test_export_refuses_a_missing_or_empty_spatialite_file(tmp_path):
    out = tmp_path / "o.geojson"
    missing = tmp_path / "nothing-here.sqlite"
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    for path, says in ((missing, "no such database file"), (empty, "empty database")):
        result = CliRunner().invoke(main, ["--database-url", f"sqlite:///{path}", "export",
                                           "-o", str(out)])
        assert result.exit_code == 1
        assert says in result.output
        assert "run `voicemap db upgrade`" in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert not out.exists()
    assert not missing.exists()  # a reader creates no database
