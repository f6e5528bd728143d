"""Import validation, all-or-nothing, idempotence and export/import round trips."""

from __future__ import annotations

import json

import pyogrio
import pytest
from helpers import feature, load, random_features, write
from sqlalchemy import text

from voicemap import db, exchange, geo, venues
from voicemap.config import BEIJING_SERVICE_AREA
from voicemap.errors import BadRequest, ImportRejected


def registry(app) -> dict[str, dict]:
    with app.app_context(), db.engine().connect() as conn:
        return {f["id"]: f for f in map(json.loads, venues.iter_features(conn))}


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
]


@pytest.mark.parametrize("bad,reason", BAD, ids=[r for _, r in BAD])
def test_invalid_feature_is_reported_and_nothing_imported(app, tmp_path, bad, reason):
    path = write(tmp_path / "in.geojson", [feature("good", 116.3, 39.9), bad])
    with pytest.raises(ImportRejected) as err:
        do_import(app, path)
    problems = err.value.details["problems"]
    assert len(problems) == 1 and problems[0]["index"] == 1
    assert reason in problems[0]["reason"]
    assert registry(app) == {}  # the valid feature was not imported either


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
        opening_hours="Tue-Sun 09:00-17:00", min_age=3, max_age=12, step_free=True,
        stroller_friendly=False, baby_care_room=True, description_en="A museum, with \"quotes\", "
        "commas and a\nnewline.")
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
    assert report.inserted == 40 and not report.problems
    assert registry(app) == original


def test_geojson_export_is_rfc7946(app, tmp_path):
    load(app, random_features(5))
    out = tmp_path / "out.geojson"
    with app.app_context(), db.engine().connect() as conn:
        exchange.write(venues.iter_features(conn), out, "geojson")
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    for f in doc["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert 115 < lon < 118 and 39 < lat < 42  # longitude first
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
