"""The HTTP API on both backends: GeoJSON answers, and a JSON 4xx for every bad input."""

from __future__ import annotations

import json

import pytest
from helpers import feature, load, random_features


@pytest.fixture
def loaded(app):
    features = random_features(60)
    features.append(feature("xss", 116.4, 39.9, "park", name_en="<img src=x onerror=alert(1)>"))
    load(app, features)
    return features


def test_nearest_returns_feature_collection_nearest_first(client, loaded):
    r = client.get("/api/nearest?lat=39.91&lon=116.39&k=7")
    assert r.status_code == 200
    assert r.mimetype == "application/geo+json"
    doc = r.get_json(force=True)
    assert doc["type"] == "FeatureCollection"
    assert len(doc["features"]) == 7
    d = [f["properties"]["distance_m"] for f in doc["features"]]
    assert d == sorted(d)


def test_nearest_filters_by_repeated_or_comma_categories(client, loaded):
    a = client.get("/api/nearest?lat=39.9&lon=116.4&k=10&category=park&category=museum")
    b = client.get("/api/nearest?lat=39.9&lon=116.4&k=10&category=park,museum")
    assert a.get_json(force=True) == b.get_json(force=True)
    cats = {f["properties"]["category"] for f in a.get_json(force=True)["features"]}
    assert cats == {"park", "museum"}


def test_nearest_with_gcj02_point(client, loaded):
    from voicemap.geo import wgs84_to_gcj02

    glon, glat = wgs84_to_gcj02(116.39, 39.91)
    a = client.get(f"/api/nearest?lat={glat}&lon={glon}&crs=gcj02").get_json(force=True)
    b = client.get("/api/nearest?lat=39.91&lon=116.39").get_json(force=True)
    assert a == b


@pytest.mark.parametrize("query,param", [
    ("lon=116.4", "lat"),
    ("lat=abc&lon=116.4", "lat"),
    ("lat=91&lon=116.4", "lat"),
    ("lat=39.9&lon=-181", "lon"),
    ("lat=39.9&lon=inf", "lon"),
    ("lat=39.9&lon=116.4&k=0", "k"),
    ("lat=39.9&lon=116.4&k=101", "k"),
    ("lat=39.9&lon=116.4&k=2.5", "k"),
    ("lat=39.9&lon=116.4&category=zoo", "category"),
    ("lat=39.9&lon=116.4&max_distance_m=-1", "max_distance_m"),
    ("lat=39.9&lon=116.4&max_distance_m=nan", "max_distance_m"),
    ("lat=39.9&lon=116.4&crs=bd09", "crs"),
])
def test_nearest_bad_parameters_get_400_naming_them(client, query, param):
    r = client.get(f"/api/nearest?{query}")
    assert r.status_code == 400
    body = r.get_json()
    assert body["param"] == param
    assert param in body["error"]


@pytest.mark.parametrize("query,param", [
    ("bbox=1,2,3", "bbox"), ("bbox=a,b,c,d", "bbox"), ("bbox=117,39,116,40", "bbox"),
    ("category=nope", "category"),
])
def test_venue_list_bad_parameters(client, query, param):
    r = client.get(f"/api/venues?{query}")
    assert r.status_code == 400
    assert r.get_json()["param"] == param


def test_venue_list_streams_everything_as_rfc7946(client, loaded):
    with client.get("/api/venues", buffered=False) as r:
        assert r.status_code == 200
        assert r.mimetype == "application/geo+json"
        assert r.is_streamed
        doc = json.loads(r.get_data(as_text=True))
    assert "crs" not in doc
    assert len(doc["features"]) == len(loaded)
    assert [f["id"] for f in doc["features"]] == sorted(f["id"] for f in doc["features"])


def test_venue_list_filters(client, loaded):
    doc = client.get("/api/venues?category=park&bbox=116.3,39.8,116.5,40.0").get_json(force=True)
    expected = sorted(
        f["properties"]["id"] for f in loaded
        if f["properties"]["category"] == "park"
        and 116.3 <= f["geometry"]["coordinates"][0] <= 116.5
        and 39.8 <= f["geometry"]["coordinates"][1] <= 40.0)
    assert len(expected) >= 2  # the fixture puts parks in the box, and some outside it
    assert [f["id"] for f in doc["features"]] == expected
    for f in doc["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert f["properties"]["category"] == "park"
        assert 116.3 <= lon <= 116.5
        assert 39.8 <= lat <= 40.0
    named = client.get("/api/venues?q=onerror").get_json(force=True)
    assert [f["id"] for f in named["features"]] == ["xss"]


def test_venue_detail_and_404(client, loaded):
    r = client.get("/api/venues/xss")
    assert r.status_code == 200
    assert r.get_json(force=True)["properties"]["name_en"] == "<img src=x onerror=alert(1)>"
    missing = client.get("/api/venues/nope")
    assert missing.status_code == 404
    assert "nope" in missing.get_json()["error"]


def test_venue_json_carries_provenance_and_chinese_hours(app, client):
    load(app, [feature("gate", 116.4, 39.9, "park", opening_hours="Daily 06:00-21:00",
                       opening_hours_zh="每天 06:00-21:00", coord_source="osm:node/123",
                       coord_datum="wgs84", coord_precision_m=30, coord_point="entrance",
                       coord_note="the south gate")])
    props = client.get("/api/venues/gate").get_json(force=True)["properties"]
    assert props["opening_hours_zh"] == "每天 06:00-21:00"
    assert props["coord_source"] == "osm:node/123"
    assert props["coord_datum"] == "wgs84"
    assert props["coord_precision_m"] == 30
    assert props["coord_point"] == "entrance"
    assert props["coord_note"] == "the south gate"
    near = client.get("/api/nearest?lon=116.4&lat=39.9&k=1").get_json(force=True)
    assert near["features"][0]["properties"]["coord_precision_m"] == 30


NINE_CATEGORIES = ["museum", "exhibition_hall", "library", "stadium", "science_site",
                   "performing_arts", "park", "green_space", "playground"]


def test_categories_lists_all_nine_in_order(client, loaded):
    cats = client.get("/api/categories").get_json()["categories"]
    assert [c["id"] for c in cats] == NINE_CATEGORIES


def test_categories_count_each_category(client, loaded):
    cats = client.get("/api/categories").get_json()["categories"]
    expected = {c: sum(f["properties"]["category"] == c for f in loaded)
                for c in NINE_CATEGORIES}
    assert min(expected.values()) > 0  # every category is in the fixture
    assert {c["id"]: c["count"] for c in cats} == expected


def test_categories_carry_both_labels(client):
    cats = client.get("/api/categories").get_json()["categories"]
    assert len(cats) == 9
    assert all(c["zh"] for c in cats), cats
    assert all(c["en"] for c in cats), cats


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.get_json()["status"] == "ok"


def test_healthz_fails_when_database_is_gone(app, client, backend, tmp_path):
    from voicemap import db

    if backend == "spatialite":
        (tmp_path / "a-directory.sqlite").mkdir()
        url = f"sqlite:///{tmp_path / 'a-directory.sqlite'}"
    else:
        url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    good = app.extensions["voicemap.engine"]
    app.extensions["voicemap.engine"] = db.make_engine(url)
    try:
        r = client.get("/healthz")
    finally:
        app.extensions["voicemap.engine"].dispose()
        app.extensions["voicemap.engine"] = good
    assert r.status_code == 503
    assert r.get_json()["status"] == "unavailable"


def test_unknown_api_path_is_json_404(client):
    r = client.get("/api/nothing-here")
    assert r.status_code == 404
    assert r.get_json()["error"]


def test_wrong_method_is_json_405(client):
    r = client.post("/api/nearest")
    assert r.status_code == 405
    assert "GET" in r.headers["Allow"]


@pytest.mark.parametrize("query", ["q=" + "a" * 101, "q=%00", "crs=xx"])
def test_venue_list_checks_everything_before_streaming(client, loaded, query):
    r = client.get(f"/api/venues?{query}")
    assert r.status_code == 400
    assert r.get_json()["error"]


def test_clips_are_ordered_by_the_page_language_everywhere(app, client, tmp_path):
    """Chinese first on Chinese pages, English first on English ones: the API (``lang``, else
    Accept-Language), hence the map's popup and near-me button, and the venue page agree."""
    from helpers import published_clip

    load(app, [feature("bilingual", 116.4, 39.9)])
    zh = published_clip(app, "bilingual", "zh", tmp_path / "a")
    en = published_clip(app, "bilingual", "en", tmp_path / "b")  # newer: first by date

    def order(url, **headers):
        r = client.get(url, headers=headers)
        assert r.status_code == 200
        return [c["id"] for c in r.get_json()["clips"]]

    assert order("/api/venues/bilingual/clips?lang=zh") == [zh["id"], en["id"]]
    assert order("/api/venues/bilingual/clips?lang=en") == [en["id"], zh["id"]]
    assert order("/api/venues/bilingual/clips?lang=zh-CN") == [zh["id"], en["id"]]
    assert order("/api/venues/bilingual/clips", **{"Accept-Language": "zh-CN,zh;q=0.9"}) == [
        zh["id"], en["id"]]
    assert order("/api/venues/bilingual/clips", **{"Accept-Language": "en-GB"}) == [
        en["id"], zh["id"]]
    r = client.get("/api/venues/bilingual/clips")
    assert "Accept-Language" in r.headers.get("Vary", "")
    bad = client.get("/api/venues/bilingual/clips?lang=%3Cscript%3E")
    assert bad.status_code == 400 and bad.get_json()["param"] == "lang"
    for lang, first, second in (("zh", zh, en), ("en", en, zh)):
        page = client.get(f"/venues/bilingual?lang={lang}").get_data(as_text=True)
        assert page.index(f'data-clip="{first["id"]}"') < page.index(
            f'data-clip="{second["id"]}"')


def real_venues():
    from helpers import ROOT_DATA

    return json.loads(ROOT_DATA.read_text(encoding="utf-8"))["features"]


@pytest.mark.parametrize(("q", "expected"), [
    ("gugong", "palace-museum"),        # pinyin without tones
    ("gu gong", "palace-museum"),       # with a space
    ("GuGong", "palace-museum"),        # any case
    ("ggbwy", "palace-museum"),         # initials
    ("故宫", "palace-museum"),           # Chinese
    ("palace museum", "palace-museum"),  # English, any case
    ("the palace", "palace-museum"),
])
def test_search_finds_venues_by_chinese_english_and_pinyin(app, client, q, expected):
    load(app, real_venues())
    r = client.get("/api/search", query_string={"q": q})
    assert r.status_code == 200, r.get_json()
    found = r.get_json()["venues"]
    assert found and found[0]["id"] == expected, [v["id"] for v in found]
    first = found[0]
    assert first["name_zh"] == "故宫博物院"
    assert first["lon"] == pytest.approx(116.39, abs=0.02)  # WGS-84, not shifted
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_search_ranks_and_limits_and_refuses_bad_queries(app, client):
    load(app, real_venues())
    many = client.get("/api/search?q=bowuguan&limit=50").get_json()["venues"]
    assert len(many) > 10 and all("博物馆" in v["name_zh"] for v in many)
    assert len(client.get("/api/search?q=bowuguan").get_json()["venues"]) == 10
    assert client.get("/api/search?q=zzzzqqq").get_json()["venues"] == []
    # A name starting with the words comes before one holding them further on.
    ids = [v["id"] for v in client.get("/api/search?q=forbidden city").get_json()["venues"]]
    assert ids.index("forbidden-city-concert-hall") < ids.index("palace-museum")
    for query, param in (("", "q"), ("q=", "q"), ("q=" + "x" * 101, "q"),
                         ("q=a%07", "q"), ("q=gugong&limit=0", "limit"),
                         ("q=gugong&limit=51", "limit"), ("q=gugong&limit=x", "limit")):
        r = client.get("/api/search?" + query)
        assert r.status_code == 400 and r.get_json()["param"] == param, query


def test_search_sees_registry_changes(app, client):
    load(app, [feature("a", 116.4, 39.9, name_zh="天坛公园", name_en="Temple of Heaven")])
    assert [v["id"] for v in client.get("/api/search?q=tiantan").get_json()["venues"]] == ["a"]
    load(app, [feature("a", 116.4, 39.9, name_zh="地坛公园", name_en="Temple of Earth")])
    assert client.get("/api/search?q=tiantan").get_json()["venues"] == []
    assert [v["id"] for v in client.get("/api/search?q=ditan").get_json()["venues"]] == ["a"]


def test_bbox_is_exact_to_the_last_digit(app, client):
    """A venue 0.3 m east of the box (3e-6 degrees) is outside it, though the spatial index
    keeps points as float32 boxes (a float32 step at longitude 116 is 7.6e-6 degrees)."""
    import numpy as np

    edge = 116.4
    load(app, [feature("inside", edge - 3e-6, 39.9), feature("outside", edge + 3e-6, 39.9),
               feature("on-edge", edge, 39.95)])
    assert np.float32(edge + 3e-6) - np.float32(edge) < 1e-5  # the index cannot tell
    doc = client.get(f"/api/venues?bbox=116.3,39.8,{edge},40.0").get_json(force=True)
    assert sorted(f["id"] for f in doc["features"]) == ["inside", "on-edge"]
