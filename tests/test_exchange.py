"""Import validation, all-or-nothing, idempotence and export/import round trips."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
from datetime import UTC, datetime

import pyogrio
import pytest
from helpers import feature, load, published_clip, random_features, write
from sqlalchemy import func, select, text

from voicemap import db, exchange, geo, venues
from voicemap.config import BEIJING_SERVICE_AREA
from voicemap.errors import BadRequest, ImportRejected
from voicemap.models import VENUE_FIELDS, Venue


def registry(app) -> dict[str, dict]:
    with app.app_context(), db.engine().connect() as conn:
        return {f["id"]: f for f in map(json.loads, venues.iter_features(conn))}


def ogrinfo(*args) -> subprocess.CompletedProcess:
    """The system's own ogrinfo (Debian 12: GDAL 3.6), with no open options."""
    if shutil.which("ogrinfo") is None:
        pytest.skip("ogrinfo (gdal-bin) is not installed; scripts/test installs it")
    return subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, check=True)


def export(app, tmp_path, fmt, name="export", **filters):
    out = tmp_path / f"{name}{exchange.SUFFIXES[fmt]}"
    with app.app_context(), db.engine().connect() as conn:
        metadata = venues.dictionary(conn)
        exchange.write(venues.iter_features(conn, **filters), out, fmt, metadata)
    return out


def do_import(app, path, **kwargs):
    with app.app_context(), db.session_scope() as session:
        return venues.import_path(session, path, service_area=BEIJING_SERVICE_AREA, **kwargs)


BAD = [
    (feature("x", 116.4, 39.9, "zoo"), "unknown category"),
    ({**feature("x", 116.4, 39.9), "geometry": {"type": "LineString",
                                                 "coordinates": [[116, 39], [117, 40]]}},
     "must be a Point"),
    ({**feature("x", 116.4, 39.9), "geometry": None}, "must be a Point"),
    (feature("x", 200.0, 39.9), "out of range"),
    (feature("x", 39.9, 116.4), "out of range"),
    (feature("x", 121.47, 31.23), "outside the service area"),
    (feature("x", 116.4, 39.9, name_en=""), "name_en is required"),
    (feature("x", 116.4, 39.9, name_zh=None), "name_zh is required"),
    (feature("Not A Slug", 116.4, 39.9), "id must be a slug"),
    (feature("x", 116.4, 39.9, min_age="three"), "min_age"),
    (feature("x", 116.4, 39.9, min_age=12, max_age=6), "min_age is greater"),
    (feature("x", 116.4, 39.9, step_free="maybe"), "step_free"),
    (feature("x", 116.4, 39.9, website="javascript:alert(1)"), "website"),
    (feature("x", 116.4, 39.9, name_en="Zoo\x00"), "control characters"),
    (feature("x", 116.4, 39.9, min_age=10**400), "min_age"),
    ({**feature("x", 116.4, 39.9), "geometry": {"type": "Point", "coordinates": ["116", 39]}},
     "coordinates must be"),
    (feature("x", 116.4, 39.9, coord_precision_m=0), "coord_precision_m"),
    (feature("x", 116.4, 39.9, coord_precision_m=-50), "coord_precision_m"),
    (feature("x", 116.4, 39.9, coord_precision_m=12.5), "coord_precision_m"),
    (feature("x", 116.4, 39.9, coord_precision_m=10**6), "coord_precision_m"),
    (feature("x", 116.4, 39.9, coord_precision_m="near"), "coord_precision_m"),
    (feature("x", 116.4, 39.9, coord_precision_m=True), "coord_precision_m"),
    (feature("x", 116.4, 39.9, coord_datum="WGS-84"), "coord_datum must be one of"),
    (feature("x", 116.4, 39.9, coord_datum="cgcs2000"), "coord_datum must be one of"),
    (feature("x", 116.4, 39.9, coord_point="middle"), "coord_point must be one of"),
    (feature("x", 116.4, 39.9, coord_source="my notes"), "coord_source must be"),
    (feature("x", 116.4, 39.9, coord_source="osm:way/abc"), "coord_source must be"),
    (feature("x", 116.4, 39.9, coord_note=7), "coord_note"),
    (feature("x", 116.4, 39.9, opening_hours_zh="周二\x07"), "opening_hours_zh"),
]


@pytest.mark.parametrize("bad,reason", BAD, ids=[r for _, r in BAD])
def test_invalid_feature_is_reported_and_nothing_imported(app, tmp_path, bad, reason):
    path = write(tmp_path / "in.geojson", [feature("good", 116.3, 39.9), bad])
    with pytest.raises(ImportRejected) as err:
        do_import(app, path)
    problems = err.value.details["problems"]
    assert len(problems) == 1
    assert problems[0]["index"] == 1
    assert reason in problems[0]["reason"]
    assert registry(app) == {}  # the valid feature was not imported either


def test_a_bad_provenance_value_names_the_feature_and_the_field(app, tmp_path):
    path = write(tmp_path / "in.geojson", [feature("good", 116.3, 39.9),
                                           feature("gate", 116.4, 39.9, coord_datum="gps")])
    with pytest.raises(ImportRejected) as err:
        do_import(app, path)
    (problem,) = err.value.details["problems"]
    assert problem["id"] == "gate"
    assert problem["reason"].startswith("coord_datum")
    assert "'gps'" in problem["reason"]
    assert registry(app) == {}


PROVENANCE = {"opening_hours": "Tue-Sun 09:00-17:00, closed Mon",
              "opening_hours_zh": "周二至周日 09:00-17:00，周一闭馆",
              "coord_source": "osm:way/779532223", "coord_datum": "gcj02",
              "coord_precision_m": 150, "coord_point": "entrance",
              "coord_note": "AMap POI B0KALBDUJY, GCJ-02 116.715067,39.884010, converted"}


def test_provenance_and_chinese_hours_are_stored_and_served(app, tmp_path):
    path = write(tmp_path / "in.geojson", [
        feature("sourced", 116.3, 39.9, **PROVENANCE),
        feature("unsourced", 116.4, 39.9, coord_source="unverified", coord_datum="unknown",
                coord_point="unknown")])
    assert do_import(app, path).inserted == 2
    got = registry(app)
    for key, value in PROVENANCE.items():
        assert got["sourced"]["properties"][key] == value, key
    assert isinstance(got["sourced"]["properties"]["coord_precision_m"], int)
    assert got["unsourced"]["properties"]["coord_source"] == "unverified"
    assert got["unsourced"]["properties"]["coord_precision_m"] is None
    # A changed provenance alone is a change: the venue is updated, not skipped.
    changed = feature("sourced", 116.3, 39.9, **{**PROVENANCE, "coord_precision_m": 40})
    write(path, [changed])
    report = do_import(app, path)
    assert report.updated == 1
    assert registry(app)["sourced"]["properties"]["coord_precision_m"] == 40


def test_duplicate_ids_in_one_file_are_invalid(app, tmp_path):
    path = write(tmp_path / "in.geojson", [feature("a", 116.3, 39.9), feature("a", 116.4, 39.9)])
    with pytest.raises(ImportRejected, match="1 of 2"):
        do_import(app, path)


def test_skip_invalid_imports_the_rest(app, tmp_path):
    path = write(tmp_path / "in.geojson", [feature("good", 116.3, 39.9),
                                           feature("bad", 116.4, 39.9, "zoo")])
    report = do_import(app, path, skip_invalid=True)
    assert (report.inserted, report.skipped) == (1, 1)
    assert report.problems[0].id == "bad"
    assert set(registry(app)) == {"good"}


def test_reimport_is_a_no_op_and_changes_update_in_place(app, tmp_path):
    features = random_features(30)
    path = write(tmp_path / "in.geojson", features)
    assert do_import(app, path).inserted == 30
    before = registry(app)
    again = do_import(app, path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 30)
    assert registry(app) == before
    features[0]["properties"]["name_en"] = "Renamed"
    features[1]["geometry"]["coordinates"] = [116.5, 40.0]
    changed = do_import(app, write(tmp_path / "in2.geojson", features))
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 2, 28)
    after = registry(app)
    assert len(after) == 30
    assert after["v00000"]["properties"]["name_en"] == "Renamed"
    assert after["v00001"]["geometry"]["coordinates"] == [116.5, 40.0]


def test_gcj02_file_is_converted_to_wgs84(app, tmp_path):
    lon, lat = 116.3975, 39.9087
    glon, glat = geo.wgs84_to_gcj02(lon, lat)
    do_import(app, write(tmp_path / "gcj.geojson", [feature("t", glon, glat)]), datum="gcj02")
    stored = registry(app)["t"]["geometry"]["coordinates"]
    assert geo.distance_m(lon, lat, *stored) < 0.05


@pytest.mark.parametrize("content,match", [
    ("not json", "not valid JSON"),
    ('{"type": "Topology"}', "not a GeoJSON FeatureCollection"),
    ('{"type": "FeatureCollection", "features": [], "crs": {"type": "name", '
     '"properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}}', "WGS-84"),
])
def test_unreadable_files_are_refused(tmp_path, content, match):
    path = tmp_path / "in.geojson"
    path.write_text(content)
    with pytest.raises(BadRequest, match=match):
        exchange.read(path)


@pytest.mark.parametrize("fmt", exchange.FORMATS)
def test_export_then_import_gives_back_the_same_registry(app, tmp_path, fmt):
    features = random_features(40)
    features[0]["properties"].update(
        address_zh="北京市西城区复兴门外大街16号", website="https://www.capitalmuseum.org.cn/",
        min_age=3, max_age=12, step_free=True,
        stroller_friendly=False, baby_care_room=True, description_en="A museum, with \"quotes\", "
        "commas and a\nnewline.", **PROVENANCE)
    features[1]["properties"].update(coord_source="https://en.wikipedia.org/wiki/Capital_Museum",
                                     coord_datum="wgs84", coord_precision_m=80,
                                     coord_point="building")
    load(app, features)
    original = registry(app)
    out = tmp_path / f"export.{exchange.SUFFIXES[fmt].lstrip('.')}"
    with app.app_context(), db.engine().connect() as conn:
        assert exchange.write(venues.iter_features(conn), out, fmt) == 40
    # GDAL reads what we wrote, with the right CRS and count.
    info = pyogrio.read_info(out)
    assert info["features"] == 40
    if fmt != "csv":
        assert "4326" in info["crs"]
    # A second database gets the same registry from the file.
    with app.app_context(), db.session_scope() as session:
        session.execute(text("DELETE FROM venues"))
    report = do_import(app, out)
    assert report.inserted == 40
    assert not report.problems
    assert registry(app) == original


def test_geojson_export_is_rfc7946_with_the_dictionary_as_a_foreign_member(app, tmp_path):
    load(app, random_features(5))
    out = export(app, tmp_path, "geojson")
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert list(doc)[:2] == ["type", "features"]
    assert doc["type"] == "FeatureCollection"
    assert "crs" not in doc
    assert len(doc["features"]) == 5
    meta = doc["metadata"]
    assert [f["name"] for f in meta["fields"]] == [*exchange.FIELD_NAMES, "geometry"]
    with app.app_context(), db.engine().connect() as conn:
        last = conn.execute(select(func.max(Venue.updated_at))).scalar_one()
    last = last.replace(tzinfo=UTC) if last.tzinfo is None else last
    assert meta["updated"].endswith("Z")
    assert datetime.fromisoformat(meta["updated"]) == last.replace(microsecond=0)
    assert meta["licence"]
    assert all(f["licence"] for f in meta["fields"])
    for f in doc["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert 115 < lon < 118
        assert 39 < lat < 42  # longitude first
        assert "narrator_name" not in f["properties"]


def test_failed_export_leaves_no_file(app, tmp_path):
    load(app, random_features(3))

    def broken():
        yield '{"type": "Feature"}'
        raise RuntimeError("database went away")

    out = tmp_path / "out.geojson"
    with pytest.raises(RuntimeError):
        exchange.write(broken(), out, "geojson")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".export-")]


def test_dictionary_has_one_entry_for_every_exported_field():
    assert set(exchange.FIELD_NAMES) == {"id", *VENUE_FIELDS, "clip_count"}
    assert len(set(exchange.FIELD_NAMES)) == len(exchange.FIELDS)
    shp = [f.shapefile_name for f in exchange.FIELDS]
    assert len(set(shp)) == len(shp)
    assert all(len(name) <= 10 for name in shp)
    for f in exchange.FIELDS:
        assert f.meaning
        assert f.type in ("text", "integer", "boolean", "real")


def fields_of(path, fmt) -> set[str]:
    """The attribute fields GDAL sees in an exported file, under their full names."""
    names = set(pyogrio.read_info(path)["fields"])
    if fmt == "shp":
        names = {exchange.FROM_SHAPEFILE.get(n, n) for n in names}
    if fmt == "csv":
        names -= set(exchange.CSV_GEOMETRY)
    return names


def test_every_format_carries_the_same_fields_and_clip_count(app, tmp_path):
    load(app, random_features(12))
    published_clip(app, "v00003", directory=tmp_path / "audio")
    for fmt in exchange.FORMATS:
        out = export(app, tmp_path, fmt)
        assert fields_of(out, fmt) == set(exchange.FIELD_NAMES), fmt
        df = pyogrio.read_dataframe(out)
        counts = dict(zip(df["id"], df["clip_count"].astype(int), strict=True))
        assert counts["v00003"] == 1, fmt
        assert sum(counts.values()) == 1, fmt


def test_every_written_file_is_0644_whatever_the_umask(app, tmp_path):
    load(app, random_features(3))
    old = os.umask(0o077)
    try:
        for fmt in exchange.FORMATS:
            export(app, tmp_path / fmt, fmt)
    finally:
        os.umask(old)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.suffix for p in written} >= {".geojson", ".gpkg", ".csv", ".csvt", ".prj", ".shp",
                                           ".shx", ".dbf", ".cpg"}
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


def test_csv_opens_in_excel_pandas_and_gdal_without_options(app, tmp_path):
    import pandas as pd

    load(app, random_features(20) + [feature("cn", 116.4, 39.9, name_zh="首都博物馆")])
    out = export(app, tmp_path, "csv")
    assert out.read_bytes().startswith(b"\xef\xbb\xbfid,lon,lat,")  # UTF-8 with a BOM
    df = pd.read_csv(out, encoding="utf-8-sig")
    assert list(df.columns[:3]) == ["id", "lon", "lat"]
    assert len(df) == 21
    assert df.set_index("id").loc["cn", "name_zh"] == "首都博物馆"
    info = ogrinfo("-al", "-so", str(out))
    assert "Geometry: Point" in info.stdout
    assert "Feature Count: 21" in info.stdout
    assert "WGS 84" in info.stdout
    assert "Warning" not in info.stderr
    # Alone (as downloaded), GDAL still reads the WKT column as each feature's Point.
    out.with_suffix(".csvt").unlink()
    out.with_suffix(".prj").unlink()
    alone = ogrinfo("-al", str(out))
    assert "Feature Count: 21" in alone.stdout
    assert alone.stdout.count("  POINT (") == 21
    assert "Warning" not in alone.stderr


def test_geopackage_is_version_1_3_silent_in_gdal_36_with_metadata(app, tmp_path):
    load(app, random_features(7))
    out = export(app, tmp_path, "gpkg")
    with sqlite3.connect(out) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 10300
    info = ogrinfo("-al", "-so", str(out))
    assert info.stderr.strip() == ""
    assert "Warning" not in info.stderr
    assert "Geometry: Point" in info.stdout
    assert "Feature Count: 7" in info.stdout
    assert "LICENCE=" in info.stdout
    assert "UPDATED=20" in info.stdout
    meta = pyogrio.read_info(out, layer="venues")["layer_metadata"]
    doc = json.loads(meta["DATA_DICTIONARY"])
    assert [f["name"] for f in doc["fields"]] == [*exchange.FIELD_NAMES, "geometry"]
    assert meta["UPDATED"] == doc["updated"]


def test_export_streams_gdal_formats_in_batches(app, tmp_path, monkeypatch):
    load(app, random_features(45))
    real = exchange._batches
    monkeypatch.setattr(exchange, "_batches", lambda features, size: real(features, 10))
    for fmt in ("gpkg", "shp"):
        out = export(app, tmp_path, fmt)
        assert pyogrio.read_info(out)["features"] == 45
    empty = export(app, tmp_path, "gpkg", name="none", category=["playground"], bbox=(
        116.0, 39.0, 116.01, 39.01))
    assert pyogrio.read_info(empty)["features"] == 0


def test_readme_documents_every_field_and_its_shapefile_name():
    from helpers import ROOT_DATA

    readme = (ROOT_DATA.parent.parent / "README.md").read_text(encoding="utf-8")
    for f in exchange.FIELDS:
        assert f"| `{f.name}` | {f.type} | {f.unit} | " in readme, f.name
        assert f"| `{f.shapefile_name}` | {f.meaning} |" in readme, f.name
