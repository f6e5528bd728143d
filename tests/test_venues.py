"""Registry queries, run on SpatiaLite and PostGIS alike, checked against brute force."""

from __future__ import annotations

import json
import random

import pytest
from helpers import BOX, feature, load, random_features

from voicemap import db, geo, venues
from voicemap.errors import BadRequest, NotFound


def brute_force(features, lon, lat, k, cats=None, max_d=None):
    rows = []
    for f in features:
        p = f["properties"]
        if cats and p["category"] not in cats:
            continue
        d = geo.distance_m(lon, lat, *f["geometry"]["coordinates"])
        if max_d is None or d <= max_d:
            rows.append((d, p["id"]))
    return sorted(rows)[:k]


def assert_same(got, expected):
    got = [json.loads(f) for f in got]
    assert [f["id"] for f in got] == [vid for _, vid in expected]
    for f, (d, _) in zip(got, expected, strict=True):
        assert f["properties"]["distance_m"] == pytest.approx(d, rel=0.005, abs=0.06)


def query_points(n, seed):
    rng = random.Random(seed)
    pts = [(rng.uniform(BOX[0], BOX[2]), rng.uniform(BOX[1], BOX[3])) for _ in range(n)]
    # Outside the venues' extent (the nearest are all far away, in one direction).
    pts += [(115.5, 40.9), (117.4, 39.5), (116.4, 39.0)]
    return pts


@pytest.fixture
def registry(app):
    features = random_features(400, seed=3)
    load(app, features)
    return features


def test_nearest_matches_brute_force_geodesic(app, registry):
    with app.app_context():
        s = db.get_session()
        for lon, lat in query_points(30, seed=11):
            for k in (1, 5, 23):
                assert_same(venues.nearest(s, lon, lat, k=k), brute_force(registry, lon, lat, k))


def test_nearest_orders_exact_ties_by_id(app):
    features = [feature(vid, 116.4, 39.9) for vid in ("c", "a", "b")]
    features.append(feature("far", 116.5, 39.9))
    load(app, features)
    with app.app_context():
        got = [json.loads(f)["id"] for f in venues.nearest(db.get_session(), 116.41, 39.9, k=4)]
    assert got == ["a", "b", "c", "far"]


def test_nearest_honours_category_filter(app, registry):
    with app.app_context():
        s = db.get_session()
        for lon, lat in query_points(12, seed=5):
            for cats in (["park"], ["museum", "library"]):
                got = venues.nearest(s, lon, lat, k=7, category=cats)
                assert_same(got, brute_force(registry, lon, lat, 7, cats))
                assert all(json.loads(f)["properties"]["category"] in cats for f in got)


def test_nearest_honours_max_distance(app, registry):
    with app.app_context():
        s = db.get_session()
        for lon, lat in query_points(12, seed=9):
            for max_d in (500.0, 3_000.0, 12_000.0):
                got = venues.nearest(s, lon, lat, k=10, max_distance_m=max_d)
                assert_same(got, brute_force(registry, lon, lat, 10, max_d=max_d))


def test_nearest_returns_all_when_fewer_than_k(app):
    load(app, [feature("one", 116.3, 39.9, "park"), feature("two", 116.9, 40.5, "park")])
    with app.app_context():
        got = venues.nearest(db.get_session(), 116.4, 39.9, k=50)
    assert [json.loads(f)["id"] for f in got] == ["one", "two"]


def test_nearest_on_empty_registry_is_empty(app):
    with app.app_context():
        assert venues.nearest(db.get_session(), 116.4, 39.9, k=5) == []


def test_nearest_converts_gcj02_query_point(app, registry):
    lon, lat = 116.39, 39.91
    glon, glat = geo.wgs84_to_gcj02(lon, lat)
    with app.app_context():
        s = db.get_session()
        from_gcj = venues.nearest(s, glon, glat, k=5, datum="gcj02")
        from_wgs = venues.nearest(s, lon, lat, k=5)
    assert from_gcj == from_wgs
    coords = json.loads(from_gcj[0])["geometry"]["coordinates"]
    expected = [f for f in registry if f["properties"]["id"] == json.loads(from_gcj[0])["id"]]
    assert coords == pytest.approx(expected[0]["geometry"]["coordinates"])  # still WGS-84


@pytest.mark.parametrize("kwargs,param", [
    ({"k": 0}, "k"), ({"k": 101}, "k"), ({"category": ["zoo"]}, "category"),
    ({"max_distance_m": -5.0}, "max_distance_m"), ({"lat": 95.0}, "lat"),
])
def test_nearest_rejects_bad_arguments(app, kwargs, param):
    args = {"lon": 116.4, "lat": 39.9, **kwargs}
    with app.app_context(), pytest.raises(BadRequest) as err:
        venues.nearest(db.get_session(), args.pop("lon"), args.pop("lat"), **args)
    assert err.value.details["param"] == param


def test_search_by_bbox_category_and_name(app, registry):
    load(app, [feature("dongcheng-library", 116.41, 39.93, "library",
                       name_zh="东城区第一图书馆", name_en="Dongcheng No.1 Library")])
    box = (116.3, 39.85, 116.45, 39.95)
    with app.app_context(), db.engine().connect() as conn:
        inside = [json.loads(f) for f in venues.iter_features(conn, bbox=box)]
        parks = [json.loads(f) for f in venues.iter_features(conn, bbox=box, category=["park"])]
        by_zh = [json.loads(f)["id"] for f in venues.iter_features(conn, q="第一图书")]
        by_en = [json.loads(f)["id"] for f in venues.iter_features(conn, q="no.1 LIBRARY")]
        literal = list(venues.iter_features(conn, q="%"))
    expected = {f["properties"]["id"] for f in registry
                if box[0] <= f["geometry"]["coordinates"][0] <= box[2]
                and box[1] <= f["geometry"]["coordinates"][1] <= box[3]} | {"dongcheng-library"}
    assert {f["id"] for f in inside} == expected
    assert parks
    assert ({f["id"] for f in parks} == {
        f["id"] for f in inside if f["properties"]["category"] == "park"})
    assert by_zh == by_en == ["dongcheng-library"]
    assert literal == []  # % is a character to match, not a wildcard


def test_get_feature_and_not_found(app):
    load(app, [feature("zoo", 116.338, 39.941, "science_site", step_free=True, min_age=0)])
    with app.app_context():
        f = json.loads(venues.get_feature(db.get_session(), "zoo"))
        with pytest.raises(NotFound):
            venues.get_feature(db.get_session(), "nope")
    assert f["type"] == "Feature"
    assert f["id"] == "zoo"
    assert f["geometry"] == {"type": "Point", "coordinates": [116.338, 39.941]}
    assert f["properties"]["step_free"] is True
    assert f["properties"]["min_age"] == 0
    assert f["properties"]["stroller_friendly"] is None


def test_category_counts_cover_all_nine(app, registry):
    with app.app_context():
        counts = venues.category_counts(db.get_session())
    assert len(counts) == 9
    assert sum(c["count"] for c in counts) == len(registry)
    assert all(c["zh"] for c in counts)
    assert all(c["en"] for c in counts)
    assert all(c["colour"].startswith("#") for c in counts)
