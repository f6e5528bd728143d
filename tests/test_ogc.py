"""OGC API - Features under /ogc, on both backends, with real clients.

A few thousand synthetic venues per backend, served by a real HTTP server in a thread, so
that paging is exercised; every answer is checked against the same venues filtered in
Python. GDAL's OAPIF driver (Debian's ogrinfo/ogr2ogr) and owslib read the service as
analysts' tools do.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import BACKENDS, throwaway_postgis
from helpers import load, random_features
from pyproj import Transformer
from shapely.geometry import Point, box, shape
from sqlalchemy import text

from voicemap import create_app, db, ogc

N = 3000
DISTRICTS = ("Dongcheng", "Xicheng", "Chaoyang", "Haidian")
CRS84, EPSG4326, EPSG3857 = ogc.CRS84, ogc.EPSG4326, ogc.EPSG3857
TO_3857 = Transformer.from_crs("OGC:CRS84", "EPSG:3857", always_xy=True)


def make_features() -> list[dict]:
    """Venues with nullable ages, booleans and districts, and names LIKE can trip on."""
    out = random_features(N, seed=12)
    for i, f in enumerate(out):
        p = f["properties"]
        p["min_age"] = i % 7 if i % 3 != 1 else None
        p["max_age"] = 12 if i % 4 else None
        p["step_free"] = (i % 2 == 0) if i % 5 else None
        p["district"] = DISTRICTS[i % 4] if i % 6 else None
        if i % 100 == 7:
            p["name_en"] = f"Park_{i}% (100%) venue"
    return out


FEATURES = make_features()
BY_ID = {f["properties"]["id"]: f for f in FEATURES}


def ids_where(predicate) -> list[str]:
    return sorted(f["properties"]["id"] for f in FEATURES if predicate(f["properties"],
                                                                      _point(f)))


def _point(f) -> Point:
    return Point(*f["geometry"]["coordinates"])


@dataclass
class Site:
    backend: str
    base: str  # .../ogc
    app: object

    def get(self, path: str, params=None, headers=None) -> tuple[int, dict, bytes]:
        url = path if path.startswith("http") else self.base + path
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params, doseq=True)
        req = urllib.request.Request(url, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, path: str, params=None, status: int = 200, headers=None) -> dict:
        code, _, body = self.get(path, params, headers)
        assert code == status, body[:500]
        return json.loads(body)

    def all_ids(self, params: dict, limit: int = 500) -> list[str]:
        """Every id the items pages give, following next links to the end."""
        page = self.json("/collections/venues/items", {**params, "limit": limit})
        out = [f["id"] for f in page["features"]]
        while True:
            nxt = [lnk for lnk in page["links"] if lnk["rel"] == "next"]
            if not nxt:
                return out
            page = self.json(nxt[0]["href"])
            out += [f["id"] for f in page["features"]]


# Children's works, one of each state the public must or must not see (the guardian's
# name and contact are the same on all, so no answer may hold them), and two activities.
WORKS: dict[str, str] = {}  # state -> work id, filled per backend by the site fixture
PUBLIC_POINT = (116.4, 39.91)


def add_works_and_activities(app) -> None:
    from test_works import admin_token, approve, open_campaign, png, post

    from voicemap import activities

    open_campaign(app)
    client, token = app.test_client(), admin_token(app)
    lat_lon = {"lon": str(PUBLIC_POINT[0]), "lat": str(PUBLIC_POINT[1])}
    states = {"public": lat_lon, "painting": {"venue_id": "v00001", "kind": "painting"},
              "no_point": {}, "pending": lat_lon, "rejected": lat_lon, "flagged": lat_lon,
              "private": {**lat_lon, "consent_public": "false"}}
    for state, over in states.items():
        file = (png(), "p.png") if over.get("kind") == "painting" else None
        r = post(client, file=file, title=f"Work {state}", **over)
        assert r.status_code == 201, r.get_json()
        WORKS[state] = r.get_json()["id"]
        if state not in ("pending",):
            approve(client, token, WORKS[state], "reject" if state == "rejected" else
                    "approve", **({"reason": "blurred"} if state == "rejected" else {}))
        if state == "flagged":
            approve(client, token, WORKS[state], "flag", reason="a school badge")
    with app.app_context():
        session = db.get_session()
        activities.add(session, "v00002", {
            "title_zh": "故事会", "title_en": "Story hour", "start": "2027-01-09T10:00:00+08:00",
            "end": "2027-01-09T11:00:00+08:00", "rrule": "FREQ=WEEKLY;COUNT=4",
            "min_age": 3, "max_age": 8, "price": 0, "booking_required": True,
            "booking_url": "https://example.com/book"})
        activities.add(session, "v00003", {
            "title_zh": "科学工作坊", "title_en": "Science workshop",
            "start": "2027-02-01T14:00:00+08:00", "end": "2027-02-01T16:30:00+08:00",
            "price": 20})


@pytest.fixture(scope="module", params=BACKENDS)
def site(request, tmp_path_factory):
    from werkzeug.serving import WSGIRequestHandler, make_server

    tmp = tmp_path_factory.mktemp(f"ogc-{request.param}")

    def run(url: str):
        app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test",
                          "MEDIA_DIR": str(tmp / "media"), "RATELIMIT_SUBMIT": "1000/hour"})
        db.init_schema(app.extensions["voicemap.engine"])
        load(app, FEATURES)
        add_works_and_activities(app)

        class Quiet(WSGIRequestHandler):
            def log(self, *args, **kwargs) -> None:
                pass

        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Site(request.param, f"http://127.0.0.1:{server.server_port}/ogc", app)
        finally:
            server.shutdown()
            app.extensions["voicemap.engine"].dispose()

    if request.param == "spatialite":
        yield from run(f"sqlite:///{tmp / 'ogc.sqlite'}")
    else:
        with throwaway_postgis("voicemap_ogc") as url:
            yield from run(url)


# --- the service documents ---------------------------------------------------------------


def test_landing_page_links_what_qgis_needs(site):
    doc = site.json("")
    rels = {lnk["rel"]: lnk for lnk in doc["links"]}
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert rels["service-desc"]["href"].endswith("/ogc/api?f=json")
    assert rels["conformance"]["href"].endswith("/ogc/conformance?f=json")
    assert rels["data"]["type"] == "application/json"
    assert rels["self"]["type"] == "application/json"


def test_landing_page_links_the_venue_tiles(site):
    doc = site.json("")
    tiles = [lnk for lnk in doc["links"]
             if lnk["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"]
    assert [t["href"] for t in tiles] == [site.base + "/collections/venues/tiles"]


def test_conformance_declares_the_classes(site):
    conforms = site.json("/conformance")["conformsTo"]
    for cls in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/geojson",
                "ogcapi-features-1/1.0/conf/html", "ogcapi-features-1/1.0/conf/oas30",
                "ogcapi-features-2/1.0/conf/crs", "ogcapi-features-3/1.0/conf/queryables",
                "ogcapi-features-3/1.0/conf/queryables-query-parameters",
                "ogcapi-features-3/1.0/conf/filter", "ogcapi-features-3/1.0/conf/features-filter",
                "cql2/1.0/conf/cql2-text", "cql2/1.0/conf/cql2-json",
                "cql2/1.0/conf/basic-cql2", "cql2/1.0/conf/basic-spatial-functions"):
        assert "http://www.opengis.net/spec/" + cls in conforms


def test_conformance_list_is_extensible(site):
    extra = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core"
    ogc.CONFORMANCE.append(extra)
    try:
        assert extra in site.json("/conformance")["conformsTo"]
    finally:
        ogc.CONFORMANCE.remove(extra)


def test_collections_answer_json_to_gdal(site):
    code, headers, body = site.get("/collections", headers={"Accept": "application/json"})
    assert code == 200
    assert headers["Content-Type"].startswith("application/json")
    listed = {c["id"]: c for c in json.loads(body)["collections"]}
    assert list(listed) == ["venues", "works", "activities"]
    assert {c["itemType"] for c in listed.values()} == {"feature"}


def test_collection_describes_extent_and_crs(site):
    doc = site.json("/collections/venues")
    (bbox,) = doc["extent"]["spatial"]["bbox"]
    assert all(bbox[0] <= f["geometry"]["coordinates"][0] <= bbox[2]
               and bbox[1] <= f["geometry"]["coordinates"][1] <= bbox[3] for f in FEATURES)
    assert doc["crs"] == [CRS84, EPSG4326, EPSG3857]
    assert doc["storageCrs"] == CRS84


def test_collection_links_items_queryables_and_tiles(site):
    rels = {(lnk["rel"], lnk["type"]) for lnk in site.json("/collections/venues")["links"]}
    assert ("items", "application/geo+json") in rels
    assert ("http://www.opengis.net/def/rel/ogc/1.0/queryables",
            "application/schema+json") in rels
    assert ("http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
            "application/json") in rels


def test_queryables_are_the_data_dictionary(site):
    from voicemap.exchange import FIELD_NAMES

    doc = site.json("/collections/venues/queryables")
    assert set(doc["properties"]) == {"geometry", *FIELD_NAMES}
    assert doc["properties"]["category"]["enum"][0] == "museum"


def test_unknown_collection_is_404_json(site):
    doc = site.json("/collections/clips", status=404)
    assert doc["param"] == "collectionId"


@pytest.mark.parametrize("path", ["", "/conformance", "/collections",
                                  "/collections/venues/items"])
def test_browsers_get_html_and_f_json_wins(site, path):
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    code, headers, _ = site.get(path, headers=browser)
    assert (code, headers["Content-Type"].split(";")[0]) == (200, "text/html")
    code, headers, _ = site.get(path, {"f": "json"}, headers=browser)
    assert headers["Content-Type"].split(";")[0] in ("application/json", "application/geo+json")


def test_qgis_accept_header_gets_geojson_items(site):
    code, headers, _ = site.get("/collections/venues/items",
                                headers={"Accept": "application/geo+json, application/json"})
    assert headers["Content-Type"] == "application/geo+json"


def test_unknown_format_is_400(site):
    assert site.json("/collections", {"f": "xml"}, status=400)["param"] == "f"


def test_public_reads_allow_other_origins(site):
    _, headers, _ = site.get("/collections/venues/items", {"limit": 1})
    assert headers.get("Access-Control-Allow-Origin") == "*"


# --- items ---------------------------------------------------------------------------------


def test_first_page_counts_and_links(site):
    code, headers, body = site.get("/collections/venues/items")
    doc = json.loads(body)
    assert headers["Content-Type"] == "application/geo+json"
    assert headers["Content-Crs"] == f"<{CRS84}>"
    assert (doc["numberMatched"], doc["numberReturned"], len(doc["features"])) == (N, 10, 10)
    nxt = [lnk for lnk in doc["links"] if lnk["rel"] == "next"]
    assert nxt[0]["type"] == "application/geo+json"


def test_features_carry_top_level_id_and_rfc7946_geometry(site):
    doc = site.json("/collections/venues/items", {"limit": 3})
    for f in doc["features"]:
        assert f["id"] == f["properties"]["id"]
        assert f["geometry"]["coordinates"] == BY_ID[f["id"]]["geometry"]["coordinates"]
    assert "crs" not in doc


def test_following_next_returns_every_feature_once_in_order(site):
    ids = site.all_ids({}, limit=700)
    assert ids == sorted(BY_ID)


def test_prev_link_returns_the_page_before(site):
    first = site.json("/collections/venues/items", {"limit": 50})
    second = site.json(next(lnk["href"] for lnk in first["links"] if lnk["rel"] == "next"))
    back = site.json(next(lnk["href"] for lnk in second["links"] if lnk["rel"] == "prev"))
    assert [f["id"] for f in back["features"]] == [f["id"] for f in first["features"]]


def test_first_page_has_no_prev(site):
    doc = site.json("/collections/venues/items", {"limit": 50})
    assert not [lnk for lnk in doc["links"] if lnk["rel"] == "prev"]


def test_number_matched_is_reused_for_count_ttl_then_recounted(site):
    params = {"filter": "name_en LIKE 'Counted %'", "limit": 1}
    before = site.json("/collections/venues/items", params)["numberMatched"]
    load(site.app, [{**FEATURES[0], "properties": {**FEATURES[0]["properties"],
                                                   "id": "counted-1", "name_en": "Counted 1"}}])
    try:
        site.app.config["OGC_COUNT_TTL_S"] = 60
        assert site.json("/collections/venues/items", params)["numberMatched"] == before
        site.app.config["OGC_COUNT_TTL_S"] = 0
        ogc._COUNTS.clear()
        assert site.json("/collections/venues/items", params)["numberMatched"] == before + 1
    finally:
        site.app.config["OGC_COUNT_TTL_S"] = 10
        with site.app.app_context(), db.session_scope() as session:
            session.execute(text("DELETE FROM venues WHERE id = 'counted-1'"))
        ogc._COUNTS.clear()


def test_limit_above_the_maximum_gets_the_maximum(site):
    site.app.config["OGC_MAX_LIMIT"] = 40
    try:
        doc = site.json("/collections/venues/items", {"limit": 100000})
    finally:
        site.app.config["OGC_MAX_LIMIT"] = 10000
    assert doc["numberReturned"] == 40


def test_bbox_keeps_the_features_inside(site):
    area = (116.30, 39.85, 116.45, 39.95)
    expected = ids_where(lambda p, pt: box(*area).intersects(pt))
    assert site.all_ids({"bbox": ",".join(map(str, area))}) == expected


def test_bbox_is_exact_not_the_index_float_boxes(site):
    x, y = BY_ID["v00011"]["geometry"]["coordinates"]
    just_west = f"{x - 0.01},{y - 0.01},{x - 1e-7},{y + 0.01}"
    touching = f"{x - 0.01},{y - 0.01},{x},{y + 0.01}"
    assert "v00011" not in site.all_ids({"bbox": just_west})
    assert "v00011" in site.all_ids({"bbox": touching})


def test_bbox_in_epsg4326_is_latitude_first(site):
    area = (116.30, 39.85, 116.45, 39.95)
    latlon = f"{area[1]},{area[0]},{area[3]},{area[2]}"
    expected = ids_where(lambda p, pt: box(*area).intersects(pt))
    assert site.all_ids({"bbox": latlon, "bbox-crs": EPSG4326}) == expected


def test_bbox_in_web_mercator(site):
    area = (116.30, 39.85, 116.45, 39.95)
    x0, y0 = TO_3857.transform(area[0], area[1])
    x1, y1 = TO_3857.transform(area[2], area[3])
    expected = ids_where(lambda p, pt: box(*area).intersects(pt))
    got = site.all_ids({"bbox": f"{x0},{y0},{x1},{y1}", "bbox-crs": EPSG3857})
    assert got == expected


def test_crs_epsg4326_answers_latitude_first(site):
    code, headers, body = site.get("/collections/venues/items", {"crs": EPSG4326,
                                                                 "limit": 5})
    assert headers["Content-Crs"] == f"<{EPSG4326}>"
    for f in json.loads(body)["features"]:
        lon, lat = BY_ID[f["id"]]["geometry"]["coordinates"]
        assert f["geometry"]["coordinates"] == [lat, lon]


def test_crs_web_mercator_answers_metres(site):
    doc = site.json("/collections/venues/items/v00005", {"crs": EPSG3857})
    x, y = TO_3857.transform(*BY_ID["v00005"]["geometry"]["coordinates"])
    assert doc["geometry"]["coordinates"] == pytest.approx([x, y], abs=0.01)


def test_queryables_as_query_parameters(site):
    expected = ids_where(lambda p, pt: p["category"] == "museum")
    assert site.all_ids({"category": "museum"}) == expected


def test_boolean_and_integer_query_parameters(site):
    expected = ids_where(lambda p, pt: p["step_free"] is True and p["min_age"] == 4)
    assert site.all_ids({"step_free": "true", "min_age": "4"}) == expected


def test_repeated_query_parameter_means_any_of(site):
    expected = ids_where(lambda p, pt: p["district"] in ("Haidian", "Xicheng"))
    assert site.all_ids({"district": ["Haidian", "Xicheng"]}) == expected


POLY = "POLYGON((116.3 39.85, 116.5 39.85, 116.5 40.0, 116.3 39.85))"
POLY_SHAPE = shape({"type": "Polygon", "coordinates": [[[116.3, 39.85], [116.5, 39.85],
                                                         [116.5, 40.0], [116.3, 39.85]]]})
CQL2_TEXT = [
    ("category = 'museum' AND min_age <= 3",
     lambda p, pt: p["category"] == "museum" and p["min_age"] is not None and p["min_age"] <= 3),
    ("min_age > 2 OR district = 'Haidian'",
     lambda p, pt: (p["min_age"] or -1) > 2 or p["district"] == "Haidian"),
    ("NOT (min_age > 2)", lambda p, pt: p["min_age"] is not None and not p["min_age"] > 2),
    ("min_age <> 3", lambda p, pt: p["min_age"] is not None and p["min_age"] != 3),
    ("min_age BETWEEN 2 AND 4", lambda p, pt: p["min_age"] is not None
     and 2 <= p["min_age"] <= 4),
    ("category IN ('park', 'library')", lambda p, pt: p["category"] in ("park", "library")),
    ("category NOT IN ('park', 'library')",
     lambda p, pt: p["category"] not in ("park", "library")),
    ("district IS NULL", lambda p, pt: p["district"] is None),
    ("district IS NOT NULL AND max_age IS NULL",
     lambda p, pt: p["district"] is not None and p["max_age"] is None),
    ("step_free = TRUE", lambda p, pt: p["step_free"] is True),
    ("step_free = false", lambda p, pt: p["step_free"] is False),
    ("name_en LIKE 'Venue v001%'", lambda p, pt: p["name_en"].startswith("Venue v001")),
    ("name_en LIKE 'Venue v00_05'", lambda p, pt: len(p["name_en"]) == 12
     and p["name_en"].startswith("Venue v00") and p["name_en"].endswith("05")),
    ("name_en LIKE 'Park\\_%\\%%'", lambda p, pt: p["name_en"].startswith("Park_")
     and "%" in p["name_en"]),
    ("min_age > 2.5", lambda p, pt: p["min_age"] is not None and p["min_age"] > 2.5),
    ("S_INTERSECTS(geometry, BBOX(116.3, 39.85, 116.45, 39.95))",
     lambda p, pt: box(116.3, 39.85, 116.45, 39.95).intersects(pt)),
    (f"S_INTERSECTS(geometry, {POLY})", lambda p, pt: POLY_SHAPE.intersects(pt)),
    (f"S_WITHIN(geometry, {POLY}) AND category = 'park'",
     lambda p, pt: POLY_SHAPE.contains(pt) and p["category"] == "park"),
    (f"S_CONTAINS({POLY}, geometry)", lambda p, pt: POLY_SHAPE.contains(pt)),
    (f"S_DISJOINT(geometry, {POLY}) AND min_age = 1",
     lambda p, pt: POLY_SHAPE.disjoint(pt) and p["min_age"] == 1),
    ("S_INTERSECTS(geometry, POINT({} {})) OR id = 'v00002'".format(
        *FEATURES[0]["geometry"]["coordinates"]),
     lambda p, pt: ((pt.x, pt.y) == tuple(FEATURES[0]["geometry"]["coordinates"])
                    or p["id"] == "v00002")),
]


@pytest.mark.parametrize(("cql", "predicate"), CQL2_TEXT, ids=[c for c, _ in CQL2_TEXT])
def test_cql2_text_filters_in_the_database(site, cql, predicate):
    expected = ids_where(predicate)
    assert expected  # each case selects something
    assert site.all_ids({"filter": cql}) == expected


def test_cql2_like_is_case_sensitive_on_both_backends(site):
    assert site.all_ids({"filter": "name_en LIKE 'venue v001%'"}) == []


CQL2_JSON = [
    ({"op": "and", "args": [{"op": "=", "args": [{"property": "category"}, "park"]},
                            {"op": ">=", "args": [{"property": "min_age"}, 4]}]},
     lambda p, pt: p["category"] == "park" and (p["min_age"] or -1) >= 4),
    ({"op": "s_intersects", "args": [{"property": "geometry"},
                                     {"bbox": [116.3, 39.85, 116.45, 39.95]}]},
     lambda p, pt: box(116.3, 39.85, 116.45, 39.95).intersects(pt)),
    ({"op": "like", "args": [{"property": "name_en"}, "Venue v01%"]},
     lambda p, pt: p["name_en"].startswith("Venue v01")),
    ({"op": "isNull", "args": [{"property": "step_free"}]},
     lambda p, pt: p["step_free"] is None),
]


@pytest.mark.parametrize(("doc", "predicate"), CQL2_JSON, ids=[d["op"] for d, _ in CQL2_JSON])
def test_cql2_json_filters_in_the_database(site, doc, predicate):
    expected = ids_where(predicate)
    got = site.all_ids({"filter": json.dumps(doc), "filter-lang": "cql2-json"})
    assert got == expected


def test_filter_crs_web_mercator(site):
    x0, y0 = TO_3857.transform(116.3, 39.85)
    x1, y1 = TO_3857.transform(116.45, 39.95)
    expected = ids_where(lambda p, pt: box(116.3, 39.85, 116.45, 39.95).intersects(pt))
    got = site.all_ids({"filter": f"S_INTERSECTS(geometry, BBOX({x0},{y0},{x1},{y1}))",
                        "filter-crs": EPSG3857})
    assert got == expected


def _sorted_ids(keys) -> list[str]:
    """Ids in the order of (property, descending) keys, NULLs last, then by id."""
    rows = [f["properties"] for f in FEATURES]
    rows.sort(key=lambda p: p["id"])
    for name, desc in reversed(keys):
        present = sorted([p for p in rows if p[name] is not None], key=lambda p: p[name],
                         reverse=desc)
        rows = present + [p for p in rows if p[name] is None]
    return [p["id"] for p in rows]


@pytest.mark.parametrize("sortby", ["min_age", "-min_age,district", "step_free,-max_age",
                                    "-name_en"])
def test_sortby_pages_through_everything_in_order(site, sortby):
    keys = [(k.lstrip("+-"), k.startswith("-")) for k in sortby.split(",")]
    assert site.all_ids({"sortby": sortby}, limit=450) == _sorted_ids(keys)


def test_paging_back_with_sortby_and_nulls(site):
    params = {"sortby": "-district", "limit": 400}
    pages = [site.json("/collections/venues/items", params)]
    while any(lnk["rel"] == "next" for lnk in pages[-1]["links"]):
        pages.append(site.json(next(lnk["href"] for lnk in pages[-1]["links"]
                                    if lnk["rel"] == "next")))
    for earlier, later in zip(pages, pages[1:], strict=False):
        back = site.json(next(lnk["href"] for lnk in later["links"] if lnk["rel"] == "prev"))
        assert [f["id"] for f in back["features"]] == [f["id"] for f in earlier["features"]]


def test_one_feature(site):
    code, headers, body = site.get("/collections/venues/items/v00042")
    doc = json.loads(body)
    assert headers["Content-Type"] == "application/geo+json"
    assert doc["id"] == "v00042"
    assert doc["properties"]["min_age"] == BY_ID["v00042"]["properties"]["min_age"]
    assert {lnk["rel"] for lnk in doc["links"]} >= {"self", "alternate", "collection"}


def test_unknown_feature_is_404(site):
    assert site.json("/collections/venues/items/nope", status=404)["param"] == "featureId"


# --- bad input ---------------------------------------------------------------------------

BAD = [
    ({"colour": "red"}, "colour"),
    ({"bbox": "1,2,3"}, "bbox"),
    ({"bbox": "a,b,c,d"}, "bbox"),
    ({"bbox": "116,40,117,39"}, "bbox"),
    ({"bbox": "116,39,117,95"}, "bbox"),
    ({"bbox": "nan,39,117,40"}, "bbox"),
    ({"bbox": "1,2,3,4", "bbox-crs": "EPSG:9999"}, "bbox-crs"),
    ({"crs": "http://www.opengis.net/def/crs/EPSG/0/2000"}, "crs"),
    ({"limit": "0"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"filter": "category = "}, "filter"),
    ({"filter": "colour = 'red'"}, "filter"),
    ({"filter": "min_age = 'three'"}, "filter"),
    ({"filter": "category > 3"}, "filter"),
    ({"filter": "S_INTERSECTS(category, POINT(1 2))"}, "filter"),
    ({"filter": "S_INTERSECTS(geometry, POINT(500 2))"}, "filter"),
    ({"filter": "max_age - min_age > 3"}, "filter"),
    ({"filter": "{not json", "filter-lang": "cql2-json"}, "filter"),
    ({"filter": "category = 'park'", "filter-lang": "cql"}, "filter-lang"),
    ({"sortby": "colour"}, "sortby"),
    ({"category": "zoo"}, "category"),
    ({"min_age": "three"}, "min_age"),
    ({"step_free": "maybe"}, "step_free"),
    ({"cursor": "garbage!"}, "cursor"),
]


@pytest.mark.parametrize(("params", "param"), BAD, ids=[p for _, p in BAD])
def test_bad_input_is_400_naming_the_parameter(site, params, param):
    doc = site.json("/collections/venues/items", params, status=400)
    assert doc["param"] == param
    assert doc["error"]


def test_cursor_of_another_query_is_refused(site):
    doc = site.json("/collections/venues/items", {"category": "park", "limit": 5})
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(
        next(lnk["href"] for lnk in doc["links"] if lnk["rel"] == "next")).query)["cursor"][0]
    err = site.json("/collections/venues/items", {"category": "museum", "cursor": token},
                    status=400)
    assert err["param"] == "cursor"


# --- OpenAPI --------------------------------------------------------------------------------


def test_openapi_document_validates(site):
    from openapi_spec_validator import validate

    code, headers, body = site.get("/api")
    assert headers["Content-Type"] == "application/vnd.oai.openapi+json;version=3.0"
    doc = json.loads(body)
    validate(doc)
    assert '"$ref": "http' not in body.decode()  # self-contained: no remote references


def _examples(doc: dict):
    """(path, query) for every operation with each of its parameters' examples."""
    params = doc["components"]["parameters"]
    for path, ops in doc["paths"].items():
        op = ops["get"]
        resolved = [params[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p
                    for p in op["parameters"]]
        concrete = path
        for p in resolved:
            if p["in"] == "path":
                concrete = concrete.replace("{" + p["name"] + "}", str(p["example"]))
        for p in resolved:
            if p["in"] != "query":
                continue
            value = p["example"]
            if isinstance(value, list):
                value = ",".join(map(str, value))
            elif isinstance(value, bool):
                value = str(value).lower()
            yield concrete, p["name"], str(value), op["responses"]["200"]["content"]


def test_every_openapi_example_answers_as_documented(site):
    doc = site.json("/api")
    seen = 0
    for path, name, value, content in _examples(doc):
        code, headers, body = site.get(path, {name: value})
        assert code == 200, (path, name, value, body[:300])
        mimetype = headers["Content-Type"]
        assert mimetype in content or mimetype.split(";")[0] in content, (path, name, mimetype)
        seen += 1
    assert seen > 20


def test_every_openapi_path_answers_its_examples(site):
    """Every path (collections, items, tiles) with its path parameters' examples answers 200
    in a documented type: the tile example is a real tile holding venues."""
    doc = site.json("/api")
    params = doc["components"]["parameters"]
    assert any("/tiles/" in path for path in doc["paths"])
    for path, ops in doc["paths"].items():
        op = ops["get"]
        concrete = path
        for p in op["parameters"]:
            p = params[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p
            if p["in"] == "path":
                concrete = concrete.replace("{" + p["name"] + "}", str(p["example"]))
        assert "{" not in concrete, path
        code, headers, body = site.get(concrete)
        assert code == 200, (concrete, body[:300])
        content = op["responses"]["200"]["content"]
        mimetype = headers["Content-Type"]
        assert mimetype in content or mimetype.split(";")[0] in content, (concrete, mimetype)
        assert body, concrete


# --- real clients ------------------------------------------------------------------------

GDAL = shutil.which("ogrinfo") and shutil.which("ogr2ogr")
needs_gdal = pytest.mark.skipif(not GDAL, reason="gdal-bin (ogrinfo, ogr2ogr) is not installed")


def _gdal(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@needs_gdal
def test_ogrinfo_lists_the_collection_and_counts_it(site):
    listing = _gdal("ogrinfo", "-ro", f"OAPIF:{site.base}")
    assert "venues" in listing
    summary = _gdal("ogrinfo", "-ro", "-so", f"OAPIF:{site.base}", "venues")
    assert f"Feature Count: {N}" in summary


@needs_gdal
def test_ogr2ogr_reads_everything_through_paging(site, tmp_path):
    out = tmp_path / "all.geojson"
    _gdal("ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{site.base}", "venues")
    ids = [f["properties"]["id"] for f in json.loads(out.read_text())["features"]]
    assert len(ids) == N
    assert len(set(ids)) == N


@needs_gdal
def test_ogr2ogr_where_and_spat(site, tmp_path):
    out = tmp_path / "some.geojson"
    _gdal("ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{site.base}", "venues",
          "-where", "category = 'museum'", "-spat", "116.3", "39.85", "116.45", "39.95")
    got = sorted(f["properties"]["id"] for f in json.loads(out.read_text())["features"])
    area = box(116.3, 39.85, 116.45, 39.95)
    assert got == ids_where(lambda p, pt: p["category"] == "museum" and area.intersects(pt))


def test_owslib_reads_collections_items_bbox_and_filters(site):
    from owslib.ogcapi.features import Features

    api = Features(site.base)
    assert "venues" in api.feature_collections()
    page = api.collection_items("venues", limit=25)
    assert page["numberMatched"] == N
    area = [116.3, 39.85, 116.45, 39.95]
    inside = api.collection_items("venues", bbox=area, limit=10000)
    assert sorted(f["id"] for f in inside["features"]) == ids_where(
        lambda p, pt: box(*area).intersects(pt))
    parks = api.collection_items("venues", filter="category = 'park' AND min_age >= 5",
                                 limit=10000)
    assert sorted(f["id"] for f in parks["features"]) == ids_where(
        lambda p, pt: p["category"] == "park" and (p["min_age"] or -1) >= 5)


def test_owslib_reads_queryables_and_one_feature(site):
    from owslib.ogcapi.features import Features

    api = Features(site.base)
    assert "category" in api.collection_queryables("venues")["properties"]
    assert api.collection_item("venues", "v00003")["id"] == "v00003"


# --- HTML ------------------------------------------------------------------------------------


def test_item_page_has_a_map_and_the_properties(site):
    code, headers, body = site.get("/collections/venues/items/v00007", {"f": "html"})
    page = body.decode()
    assert 'id="ogc-map"' in page
    assert BY_ID["v00007"]["properties"]["name_en"] in page
    assert "Content-Security-Policy" in headers


def test_items_page_links_next_page(site):
    page = site.get("/collections/venues/items", {"f": "html"})[2].decode()
    assert 'rel="next"' in page



CHROMIUM = "/usr/bin/chromium"


@pytest.mark.parametrize("width", [320, 360])
@pytest.mark.parametrize("path", ["/collections/venues/items/v00007?f=html",
                                  "/collections/venues/items?f=html&limit=20"])
def test_html_pages_fit_a_phone_and_draw_the_map(site, browser, path, width):
    """Headless Chromium: the page fits the screen, the map draws from the app's own
    assets (tiles answered locally), and the script breaks no CSP rule."""
    shots = Path(__file__).resolve().parent.parent / "test-output" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": 740})
    try:
        errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("https://tile.openstreetmap.org/**",
                   lambda route: route.fulfill(status=204))
        page.goto(site.base + path)
        page.wait_for_selector("#ogc-map .leaflet-marker-pane path, "
                               "#ogc-map .leaflet-overlay-pane path", state="attached")
        name = path.split("?")[0].strip("/").replace("/", "-")
        page.screenshot(path=str(shots / f"ogc-{site.backend}-{name}-{width}.png"),
                        full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth")
    finally:
        page.close()
    assert overflow <= width
    assert errors == []


# --- children's works and activities --------------------------------------------------------


def _text_of_every_answer(site) -> str:
    """Every works and activities answer (JSON and HTML), as one text to search."""
    paths = ["/collections", "/collections/works", "/collections/works/queryables", "/api",
             "/collections/works/items?limit=100", "/collections/works/items?f=html",
             "/collections/activities/items?limit=100"]
    paths += [f"/collections/works/items/{wid}{f}" for wid in WORKS.values()
              for f in ("", "?f=html")]
    return "\n".join(site.get(p)[2].decode() for p in paths)


def test_works_items_are_the_public_works_with_a_point(site):
    doc = site.json("/collections/works/items", {"limit": 100})
    got = sorted(f["id"] for f in doc["features"])
    assert got == sorted([WORKS["public"], WORKS["painting"]])
    assert doc["numberMatched"] == 2


@pytest.mark.parametrize("state", ["pending", "rejected", "flagged", "private", "no_point"])
def test_works_that_are_not_public_are_404(site, state):
    err = site.json(f"/collections/works/items/{WORKS[state]}", status=404)
    assert err["param"] == "featureId"


def test_a_public_work_shows_what_the_works_api_shows(site):
    feature = site.json(f"/collections/works/items/{WORKS['public']}")
    public = site.app.test_client().get(f"/api/works/{WORKS['public']}").get_json()
    assert feature["geometry"] == public["geometry"]
    props = feature["properties"]
    assert props == {k: v for k, v in public.items() if k != "geometry"}


def test_a_work_point_is_the_coarsened_one(site):
    from voicemap.works import coarsen

    feature = site.json(f"/collections/works/items/{WORKS['public']}")
    assert feature["geometry"]["coordinates"] == list(coarsen(*PUBLIC_POINT))


def test_a_work_at_a_venue_is_at_the_venue_with_its_thumbnail(site):
    props = site.json(f"/collections/works/items/{WORKS['painting']}")["properties"]
    assert props["venue_id"] == "v00001"
    assert props["thumb_url"] == f"/media/works/{WORKS['painting']}/thumb"
    code, headers, _ = site.get(site.base.removesuffix("/ogc") + props["thumb_url"])
    assert (code, headers["Content-Type"].split("/")[0]) == (200, "image")


def test_no_works_answer_holds_guardian_data(site):
    from test_works import CONTACT, GUARDIAN

    every = _text_of_every_answer(site)
    assert WORKS["public"] in every  # the search covers the answers that show works
    assert GUARDIAN not in every
    assert CONTACT not in every
    for private in ("guardian_contact", "consent_by", "consent_public",
                    "flag_reason", "reject_reason", "withdraw"):
        assert f'"{private}"' not in every, private


def test_works_queryables_are_the_public_fields(site):
    props = site.json("/collections/works/queryables")["properties"]
    assert "kind" in props
    assert props["kind"]["enum"] == ["painting", "photo", "writing", "song"]
    assert not {"district", "status", "flagged", "consent_by", "guardian_contact"} & set(props)


@pytest.mark.parametrize(("params", "state"), [
    ({"kind": "painting"}, "painting"), ({"filter": "kind = 'writing'"}, "public"),
    ({"filter": "S_INTERSECTS(geometry, BBOX(116.39, 39.9, 116.41, 39.92))"}, "public"),
    ({"bbox": "116.39,39.9,116.41,39.92"}, "public"),
    ({"filter": "venue_id = 'v00001' AND narrator_age >= 9"}, "painting")])
def test_works_filter_by_kind_bbox_and_cql2(site, params, state):
    doc = site.json("/collections/works/items", params)
    assert [f["id"] for f in doc["features"]] == [WORKS[state]]


def test_works_pages_follow_next(site):
    doc = site.json("/collections/works/items", {"limit": 1, "sortby": "-title"})
    nxt = next(lnk["href"] for lnk in doc["links"] if lnk["rel"] == "next")
    second = site.json(nxt)
    assert [doc["features"][0]["id"], second["features"][0]["id"]] == [
        WORKS["public"], WORKS["painting"]]  # "Work public" > "Work painting"
    assert not [lnk for lnk in second["links"] if lnk["rel"] == "next"]


def test_works_html_item_page(site):
    page = site.get(f"/collections/works/items/{WORKS['public']}", {"f": "html"})[2].decode()
    assert 'id="ogc-map"' in page
    assert "<h1>Work public</h1>" in page


def test_owslib_reads_the_works(site):
    from owslib.ogcapi.features import Features

    api = Features(site.base)
    assert "works" in api.feature_collections()
    found = api.collection_items("works", filter="kind = 'writing'")
    assert [f["id"] for f in found["features"]] == [WORKS["public"]]


def test_activities_are_features_at_their_venues(site):
    doc = site.json("/collections/activities/items", {"sortby": "title_en"})
    assert [f["properties"]["title_en"] for f in doc["features"]] == [
        "Science workshop", "Story hour"]
    story = doc["features"][1]
    assert story["geometry"]["coordinates"] == pytest.approx(
        BY_ID["v00002"]["geometry"]["coordinates"], abs=1e-6)


def test_an_activity_shows_what_the_activities_api_shows(site):
    first = site.json("/collections/activities/items", {"title_en": "Story hour"})
    (feature,) = first["features"]
    api = site.app.test_client().get(f"/api/activities/{feature['id']}").get_json()
    props = feature["properties"]
    for key in ("id", "venue_id", "title_zh", "title_en", "start", "end", "rrule", "min_age",
                "max_age", "price", "free", "booking_required", "booking_url", "status"):
        assert props[key] == api[key], key


def test_activity_times_are_beijing_time(site):
    (feature,) = site.json("/collections/activities/items",
                           {"title_en": "Story hour"})["features"]
    assert feature["properties"]["start"] == "2027-01-09T10:00:00+08:00"
    assert feature["properties"]["last_end"] == "2027-01-30T11:00:00+08:00"


@pytest.mark.parametrize(("params", "title"), [
    ({"free": "true"}, "Story hour"), ({"filter": "price > 10"}, "Science workshop"),
    ({"filter": "min_age <= 5 AND booking_required = true"}, "Story hour"),
    ({"category": BY_ID["v00003"]["properties"]["category"], "venue_id": "v00003"},
     "Science workshop")])
def test_activities_filters(site, params, title):
    doc = site.json("/collections/activities/items", params)
    assert [f["properties"]["title_en"] for f in doc["features"]] == [title]


def test_activity_by_id_and_unknown_ids(site):
    (feature,) = site.json("/collections/activities/items",
                           {"title_en": "Science workshop"})["features"]
    assert site.json(f"/collections/activities/items/{feature['id']}")["id"] == feature["id"]
    assert site.json("/collections/activities/items/9999", status=404)["param"] == "featureId"
    assert site.json("/collections/activities/items/abc", status=404)["param"] == "featureId"


def test_activities_page_through_with_an_integer_cursor(site):
    doc = site.json("/collections/activities/items", {"limit": 1})
    nxt = next(lnk["href"] for lnk in doc["links"] if lnk["rel"] == "next")
    second = site.json(nxt)
    assert doc["features"][0]["id"] < second["features"][0]["id"]


@needs_gdal
def test_ogr2ogr_reads_the_works(site, tmp_path):
    out = tmp_path / "works.geojson"
    _gdal("ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{site.base}", "works",
          "-where", "kind = 'painting'")
    got = [f["properties"]["id"] for f in json.loads(out.read_text())["features"]]
    assert got == [WORKS["painting"]]
