"""Downloads from /api/venues in every format (read back by the system's GDAL), and CORS."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import feature, load, random_features

from voicemap import exchange

FILTERS = "category=park,museum&bbox=116.2,39.8,116.6,40.05"


@pytest.fixture
def loaded(app):
    features = random_features(90)
    features.append(feature("named", 116.4, 39.9, "park", name_en="Ritan Park"))
    load(app, features)
    return features


def ogrinfo(*args) -> str:
    """Run the system's ogrinfo (Debian 12: GDAL 3.6) with no open options; its stdout."""
    if shutil.which("ogrinfo") is None:
        pytest.skip("ogrinfo (gdal-bin) is not installed; scripts/test installs it")
    done = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, check=True)
    assert "Warning" not in done.stderr, done.stderr
    assert "ERROR" not in done.stderr, done.stderr
    return done.stdout


def ids(client, query: str) -> list[str]:
    return [f["id"] for f in client.get(f"/api/venues?{query}").get_json(force=True)["features"]]


def leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("voicemap-download-*")}


@pytest.mark.parametrize("fmt,ext,mimetype", [
    ("gpkg", "gpkg", "application/geopackage+sqlite3"),
    ("csv", "csv", "text/csv"),
    ("shp", "zip", "application/zip"),
])
@pytest.mark.parametrize("query", ["", FILTERS, "q=ritan"])
def test_download_in_each_format_is_read_by_gdal_with_the_filters(
        client, loaded, tmp_path, fmt, ext, mimetype, query):
    expected = len(ids(client, query))
    before = leftovers()
    r = client.get(f"/api/venues?f={fmt}&{query}")
    assert r.status_code == 200
    assert r.mimetype == mimetype
    assert r.headers["Content-Disposition"] == f"attachment; filename=voicemap-venues.{ext}"
    assert int(r.headers["Content-Length"]) == len(r.data)
    assert leftovers() == before  # the temporary file is gone
    path = tmp_path / f"download.{ext}"
    path.write_bytes(r.data)
    if fmt == "shp":
        import zipfile

        with zipfile.ZipFile(path) as zf:
            assert sorted(zf.namelist()) == [f"voicemap-venues.{s}"
                                             for s in ("cpg", "dbf", "prj", "shp", "shx")]
        info = ogrinfo("-al", "-so", f"/vsizip/{path}/voicemap-venues.shp")
    else:
        info = ogrinfo("-al", "-so", str(path))
    assert f"Feature Count: {expected}" in info
    if fmt == "csv":
        assert r.data.startswith(b"\xef\xbb\xbf")
        # GDAL reads the WKT column, with no options and no sidecar, as each row's Point.
        assert ogrinfo("-al", str(path)).count("  POINT (") == expected
    else:
        assert "Geometry: Point" in info


def test_downloads_carry_clip_count_and_the_dictionary(client, loaded, tmp_path):
    import pyogrio

    path = tmp_path / "v.gpkg"
    path.write_bytes(client.get("/api/venues?f=gpkg").data)
    assert "clip_count" in pyogrio.read_info(path)["fields"]
    assert "DATA_DICTIONARY" in pyogrio.read_info(path)["layer_metadata"]
    header = client.get("/api/venues?f=csv").data.decode("utf-8-sig").splitlines()[0]
    assert header.split(",") == ["id", "lon", "lat", *exchange.FIELD_NAMES[1:], "WKT"]


def test_geojson_is_the_default_and_carries_the_dictionary(client, loaded):
    default = client.get("/api/venues")
    assert "Content-Disposition" not in default.headers
    doc = json.loads(default.get_data(as_text=True))
    assert list(doc)[:2] == ["type", "features"]
    assert "crs" not in doc
    assert doc["metadata"]["updated"]
    assert doc["metadata"]["fields"][0]["name"] == "id"
    named = client.get("/api/venues?f=geojson")
    assert named.headers["Content-Disposition"] == "attachment; filename=voicemap-venues.geojson"
    assert named.get_data() == default.get_data()


@pytest.mark.parametrize("query", ["f=xls", "f=GPKG", "f=", "f=shp&category=zoo"])
def test_unknown_format_or_filter_is_a_400_before_anything_is_written(client, query):
    r = client.get(f"/api/venues?{query}")
    assert r.status_code == 400
    assert r.is_json
    if "zoo" not in query:
        assert r.get_json()["param"] == "f"
        assert "f " in r.get_json()["error"]


PUBLIC = ["/api/venues", "/api/venues/named", "/api/nearest?lat=39.9&lon=116.4",
          "/api/categories", "/api/venues/named/clips",
          "/api/map/venues?bbox=116.0,39.7,116.8,40.2&zoom=12",
          "/api/campaigns", "/api/works", "/api/map/works?bbox=116.0,39.7,116.8,40.2",
          "/api/activities", "/api/venues/named/activities", "/api/articles"]


@pytest.mark.parametrize("path", PUBLIC)
def test_public_reads_allow_any_origin_without_credentials(client, loaded, path):
    r = client.get(path, headers={"Origin": "https://example.org"})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in r.headers
    pre = client.options(path.split("?")[0], headers={
        "Origin": "https://example.org", "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 204
    assert pre.data == b""
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    assert pre.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"
    assert "Access-Control-Allow-Headers" in pre.headers
    assert "authorization" not in pre.headers["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Credentials" not in pre.headers


def test_public_errors_are_readable_cross_origin(client):
    r = client.get("/api/venues?f=xls", headers={"Origin": "https://example.org"})
    assert r.status_code == 400
    assert r.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("method,path", [
    ("post", "/api/venues/named/clips"),
    ("get", "/api/review"),
    ("get", "/api/clips/nope"),
    ("delete", "/api/clips/nope"),
    ("post", "/api/clips/nope/publish"),
    ("post", "/api/clips/nope/reject"),
    ("options", "/api/review"),
    ("options", "/api/clips/nope"),
    ("get", "/healthz"),
    ("get", "/"),
])
def test_token_taking_writing_and_non_api_paths_get_no_cors(client, loaded, method, path):
    r = getattr(client, method)(path, headers={"Origin": "https://example.org",
                                               "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Access-Control-Allow-Credentials" not in r.headers
    if method == "options":
        assert r.status_code != 204


def test_a_request_with_a_token_gets_no_cors(client, loaded):
    r = client.get("/api/venues/named/clips", headers={
        "Origin": "https://example.org", "Authorization": "Bearer vm_not-a-real-token"})
    assert "Access-Control-Allow-Origin" not in r.headers
