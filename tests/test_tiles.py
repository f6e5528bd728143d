"""Vector tiles (OGC API - Tiles): tiles decoded and placed by independent arithmetic,
both backends alike, metadata documents, errors, caching, CORS, and GDAL reading a tile."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import time

import mapbox_vector_tile
import pytest
from helpers import feature, load
from pyproj import Transformer
from test_pages import add_clip

from voicemap import create_app, db, tiles

BASE = "/ogc/collections/venues/tiles/WebMercatorQuad"
TO_3857 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
# The world's half-width in EPSG:3857, from PROJ rather than from voicemap's constant.
HALF = TO_3857.transform(180.0, 0.0)[0]
# Tiananmen: well inside its z=14 tile, so no neighbour's buffer reaches it.
CENTRE = (116.3975, 39.9087)


def locate(lon: float, lat: float, z: int) -> tuple[int, int, int, int]:
    """(x, y, px, py): the tile holding a point at level z and the point's tile coordinates
    (0-4096, y down, rounded), computed with PROJ's Web Mercator."""
    mx, my = TO_3857.transform(lon, lat)
    size = 2 * HALF / 2 ** z
    x, y = math.floor((mx + HALF) / size), math.floor((HALF - my) / size)
    px = round((mx - (-HALF + x * size)) / size * 4096)
    py = round(((HALF - y * size) - my) / size * 4096)
    return x, y, px, py


def decode(body: bytes) -> list[dict]:
    """The features of the tile's ``venues`` layer (tile coordinates, y down)."""
    layers = mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})
    assert list(layers) == ["venues"]
    assert layers["venues"]["extent"] == 4096
    return layers["venues"]["features"]


def by_id(features: list[dict]) -> dict[str, dict]:
    return {f["properties"]["id"]: f for f in features}


@pytest.fixture
def placed(app):
    """A venue at CENTRE with a published and a pending clip, one just inside the east edge
    of CENTRE's z=14 tile, and one far away."""
    x, y, _, _ = locate(*CENTRE, 14)
    size = 360.0 / 2 ** 14
    east_lon = -180.0 + (x + 1) * size - size * 20 / 4096  # 20 tile units from the edge
    load(app, [
        feature("tiananmen", *CENTRE, "museum", name_en="Tiananmen", district="Dongcheng",
                min_age=3, max_age=12, step_free=True, stroller_friendly=False,
                address_en="1 Private-ish Road", description_en="A long description"),
        feature("east-edge", east_lon, CENTRE[1], "park"),
        feature("far", 116.0, 40.5, "library"),
    ])
    add_clip(app, "tiananmen", "c1", "published")
    add_clip(app, "tiananmen", "c2", "pending")
    return x, y


def test_known_venue_is_in_its_z14_tile_at_its_pixel_not_in_a_neighbour(client, placed):
    x, y, px, py = locate(*CENTRE, 14)
    r = client.get(f"{BASE}/14/{x}/{y}")
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.mapbox-vector-tile"
    found = by_id(decode(r.data))
    venue = found["tiananmen"]
    assert venue["geometry"] == {"type": "Point", "coordinates": [px, py]}
    assert venue["properties"] == {
        "id": "tiananmen", "name_zh": "场馆tiananmen", "name_en": "Tiananmen",
        "category": "museum", "clip_count": 1, "cluster": False}
    assert "far" not in found
    for nx, ny in ((x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)):
        r = client.get(f"{BASE}/14/{nx}/{ny}")
        ids = by_id(decode(r.data)) if r.status_code == 200 else {}
        assert "tiananmen" not in ids


def test_a_venue_near_an_edge_is_in_the_neighbours_buffer(client, placed):
    x, y = placed
    own = by_id(decode(client.get(f"{BASE}/14/{x}/{y}").data))["east-edge"]
    assert 4096 - 21 <= own["geometry"]["coordinates"][0] <= 4096 - 19
    r = client.get(f"{BASE}/14/{x + 1}/{y}")
    assert r.status_code == 200
    there = by_id(decode(r.data))["east-edge"]
    assert there["geometry"]["coordinates"][0] == own["geometry"]["coordinates"][0] - 4096
    assert there["geometry"]["coordinates"][1] == own["geometry"]["coordinates"][1]


def test_empty_tile_is_204_with_validators(client, placed):
    r = client.get(f"{BASE}/14/0/0")
    assert r.status_code == 204
    assert r.data == b""
    assert r.headers["ETag"]
    assert "max-age" in r.headers["Cache-Control"]


def test_etag_and_if_none_match_give_304(client, placed):
    x, y = placed
    first = client.get(f"{BASE}/14/{x}/{y}")
    tag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == f"public, max-age={tiles.CACHE_SECONDS}"
    again = client.get(f"{BASE}/14/{x}/{y}", headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == tag
    other = client.get(f"{BASE}/14/{x}/{y}", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_etag_changes_when_the_tile_does(app, client, placed):
    x, y = placed
    before = client.get(f"{BASE}/14/{x}/{y}").headers["ETag"]
    add_clip(app, "tiananmen", "c3", "published")
    after = client.get(f"{BASE}/14/{x}/{y}", headers={"If-None-Match": before})
    assert after.status_code == 200
    assert by_id(decode(after.data))["tiananmen"]["properties"]["clip_count"] == 2


@pytest.mark.parametrize(("path", "param"), [
    ("23/0/0", "z"), ("-1/0/0", "z"), ("abc/0/0", "z"), ("1.5/0/0", "z"),
    ("0/1/0", "x"), ("3/8/0", "x"), ("3/-1/0", "x"), ("14/x/0", "x"),
    ("0/0/1", "y"), ("3/0/8", "y"), ("22/0/4194304", "y"), ("2/0/1e1", "y"),
])
def test_bad_tile_address_is_a_400_naming_it(client, path, param):
    r = client.get(f"{BASE}/{path}")
    assert r.status_code == 400
    assert r.is_json
    assert r.json["param"] == param
    assert param in r.json["error"]


@pytest.mark.parametrize("path", [
    "/ogc/collections/venues/tiles/WorldCRS84Quad",
    "/ogc/collections/venues/tiles/WorldCRS84Quad/0/0/0",
    "/ogc/tileMatrixSets/WorldCRS84Quad",
])
def test_unknown_tile_matrix_set_is_a_404_json(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert r.is_json
    assert "WorldCRS84Quad" in r.json["error"]


def test_tileset_metadata_has_the_required_members_and_its_template_works(client, placed):
    listing = client.get("/ogc/collections/venues/tiles")
    assert listing.status_code == 200
    assert listing.is_json
    [summary] = listing.json["tilesets"]
    assert summary["dataType"] == "vector"
    assert summary["tileMatrixSetURI"] == tiles.TMS_URI
    selfs = [k["href"] for k in summary["links"] if k["rel"] == "self"]
    assert selfs == ["http://localhost" + BASE]

    doc = client.get(BASE).json
    assert doc["dataType"] == "vector"
    assert doc["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    assert doc["tileMatrixSetURI"] == \
        "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
    rels = {k["rel"]: k for k in doc["links"]}
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"]["href"] == \
        "http://localhost/ogc/tileMatrixSets/WebMercatorQuad"
    item = rels["item"]
    assert item["type"] == "application/vnd.mapbox-vector-tile"
    assert item["templated"] is True
    assert "204" in doc["description"]
    [layer] = doc["layers"]
    assert layer["id"] == "venues"
    assert layer["dataType"] == "vector"
    props = layer["propertiesSchema"]["properties"]
    assert list(props) == [*tiles.TILE_FIELDS, "cluster", "point_count", "voiced_count"]
    assert props["clip_count"]["type"] == "integer"
    assert props["cluster"]["type"] == "boolean"
    assert props["name_zh"]["type"] == "string"
    assert not {"address_zh", "address_en", "description_en", "website"} & set(props)
    z14 = next(lim for lim in doc["tileMatrixSetLimits"] if lim["tileMatrix"] == "14")
    x, y = placed
    assert z14["minTileCol"] <= x <= z14["maxTileCol"]
    assert z14["minTileRow"] <= y <= z14["maxTileRow"]

    url = (item["href"].replace("{tileMatrix}", "14").replace("{tileCol}", str(x))
           .replace("{tileRow}", str(y)))
    r = client.get(url.removeprefix("http://localhost"))
    assert r.status_code == 200
    assert "tiananmen" in by_id(decode(r.data))


def test_tile_matrix_set_is_the_standard_webmercatorquad(client):
    listing = client.get("/ogc/tileMatrixSets").json
    assert [t["id"] for t in listing["tileMatrixSets"]] == ["WebMercatorQuad"]
    assert listing["tileMatrixSets"][0]["links"][0]["href"] == \
        "http://localhost/ogc/tileMatrixSets/WebMercatorQuad"
    doc = client.get("/ogc/tileMatrixSets/WebMercatorQuad").json
    assert doc["id"] == "WebMercatorQuad"
    assert doc["uri"] == "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
    assert doc["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    matrices = doc["tileMatrices"]
    assert [m["id"] for m in matrices] == [str(z) for z in range(25)]
    # Levels 0, 14 and 22 as the standard's registry (OGC 17-083r4) prints them, to its
    # 15 significant digits.
    for z, scale, cell in ((0, 559082264.028717, 156543.033928041),
                           (14, 34123.6733415964, 9.55462853564703),
                           (22, 133.295598990611, 0.0373227677173712)):
        assert matrices[z]["scaleDenominator"] == pytest.approx(scale, rel=1e-14)
        assert matrices[z]["cellSize"] == pytest.approx(cell, rel=1e-14)
    assert matrices[0]["pointOfOrigin"] == pytest.approx([-20037508.3427892, 20037508.3427892],
                                                         rel=1e-14)
    assert matrices[14]["matrixWidth"] == matrices[14]["matrixHeight"] == 16384
    assert {m["cornerOfOrigin"] for m in matrices} == {"topLeft"}
    assert {(m["tileWidth"], m["tileHeight"]) for m in matrices} == {(256, 256)}
    assert abs(doc["tileMatrices"][0]["pointOfOrigin"][1] - HALF) < 1e-6
    # TMS 1.0's names for the same, for GDAL 3.6's parser
    assert doc["identifier"] == "WebMercatorQuad"
    assert doc["supportedCRS"] == doc["crs"]
    assert [m["identifier"] for m in matrices] == [m["id"] for m in matrices]
    assert all(m["topLeftCorner"] == m["pointOfOrigin"] for m in matrices)


@pytest.mark.parametrize("path", [
    BASE + "/14/13489/6208", BASE, "/ogc/collections/venues/tiles",
    "/ogc/tileMatrixSets/WebMercatorQuad", BASE + "/99/0/0"])
def test_tiles_and_metadata_are_readable_cross_origin(client, placed, path):
    r = client.get(path, headers={"Origin": "https://maps.example.org"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in r.headers
    pre = client.options(path, headers={"Origin": "https://maps.example.org",
                                        "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 204
    assert "GET" in pre.headers["Access-Control-Allow-Methods"]


def test_a_request_with_a_token_gets_no_cors(client, placed):
    r = client.get(BASE, headers={"Origin": "https://x.example", "Authorization": "Bearer t"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_gdal_reads_a_downloaded_tile(client, placed, tmp_path):
    if shutil.which("ogrinfo") is None:
        pytest.skip("ogrinfo (gdal-bin) is not installed; scripts/test installs it")
    x, y = placed
    # GDAL's MVT driver georeferences a tile found at .../{z}/{x}/{y}.pbf
    path = tmp_path / "14" / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(client.get(f"{BASE}/14/{x}/{y}").data)
    done = subprocess.run(["ogrinfo", "-ro", "-al", f"MVT:{path}"], capture_output=True,
                          text=True, check=True)
    assert "ERROR" not in done.stderr
    out = done.stdout
    assert "Layer name: venues" in out
    block = out[out.index("id (String) = tiananmen"):]
    mx, my = map(float, re.search(r"POINT \(([-\d.]+) ([-\d.]+)\)", block).groups())
    ex, ey = TO_3857.transform(*CENTRE)
    unit = 2 * HALF / 2 ** 14 / 4096  # one tile coordinate, in metres
    assert abs(mx - ex) <= unit
    assert abs(my - ey) <= unit
    assert "clip_count (Integer" in out
    assert "name_en (String) = Tiananmen" in block


# --- thinning at low zooms, and the two backends alike ----------------------------------------

# 2,100 venues (more than MAX_FEATURES, 1,000) well inside one z=10 tile: 21 at each point
# of a 10 x 10 grid whose coordinates are multiples of 2**-7 degrees, exact in the
# registry's 7 decimals and in SpatiaLite's single-precision R*Tree alike, so both
# backends cut the same clusters (real coordinates may differ there by a metre).
CROWD = 2100
STEP = 2 ** -7
WEST, SOUTH = 14906 * STEP, 5114 * STEP  # 116.453125, 39.953125
MIDDLE = (WEST + 5 * STEP, SOUTH + 5 * STEP)


def crowd() -> list[dict]:
    return [feature(f"c{i:05d}", WEST + (i % 10) * STEP, SOUTH + (i // 10 % 10) * STEP,
                    "park") for i in range(CROWD)]


@pytest.fixture
def crowded(app):
    load(app, crowd())
    for i in range(0, 30, 3):  # ten voiced venues
        add_clip(app, f"c{i:05d}", f"k{i}", "published")
    return app


def test_a_crowded_tile_is_thinned_to_clusters_that_count_every_venue(client, crowded):
    x, y, _, _ = locate(*MIDDLE, 10)
    r = client.get(f"{BASE}/10/{x}/{y}")
    assert r.status_code == 200
    features = decode(r.data)
    assert {f["properties"]["cluster"] for f in features} == {True}
    assert 1 < len(features) <= tiles.CLUSTER_GRID ** 2
    assert sum(f["properties"]["point_count"] for f in features) == CROWD
    assert sum(f["properties"]["voiced_count"] for f in features) == 10
    assert r.headers["Cache-Control"] == f"public, max-age={tiles.CLUSTER_SECONDS}"
    assert all(0 <= c <= 4096 for f in features for c in f["geometry"]["coordinates"])
    assert len(r.data) < 10_000


def test_a_tile_at_a_high_zoom_inside_the_crowd_shows_venues(client, crowded):
    x, y, px, py = locate(WEST, SOUTH, 18)
    features = by_id(decode(client.get(f"{BASE}/18/{x}/{y}").data))
    assert features["c00000"]["geometry"]["coordinates"] == [px, py]
    assert features["c00000"]["properties"]["cluster"] is False


@pytest.fixture
def both(postgis_url, tmp_path):
    """The same registry on SpatiaLite and PostGIS: two apps."""
    from sqlalchemy import text

    engine = db.make_engine(postgis_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE venues, clips, managers, manager_venues CASCADE"))
    engine.dispose()
    apps = []
    for name, url in (("spatialite", f"sqlite:///{tmp_path / 'v.sqlite'}"),
                      ("postgis", postgis_url)):
        app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "t",
                          "MEDIA_DIR": str(tmp_path / f"media-{name}")})
        db.init_schema(app.extensions["voicemap.engine"])
        load(app, [*crowd(), feature("tiananmen", *CENTRE, "museum", step_free=False,
                                     min_age=4, name_en="Tiananmen")])
        for i in range(0, 30, 3):
            add_clip(app, f"c{i:05d}", f"k{i}", "published")
        apps.append(app)
    yield apps
    for app in apps:
        app.extensions["voicemap.engine"].dispose()


def test_spatialite_and_postgis_build_equivalent_tiles(both):
    lite, pg = (app.test_client() for app in both)
    cases = [(z, *locate(*MIDDLE, z)[:2]) for z in (4, 10, 12, 14, 16)]
    cases += [(14, *locate(*CENTRE, 14)[:2]), (17, *locate(WEST, SOUTH, 17)[:2])]
    kinds = set()
    for z, x, y in cases:
        a, b = lite.get(f"{BASE}/{z}/{x}/{y}"), pg.get(f"{BASE}/{z}/{x}/{y}")
        assert (a.status_code, z) == (b.status_code, z)
        fa, fb = decode(a.data), decode(b.data)
        assert len(fa) == len(fb)
        # Both order venues by id and clusters by grid row and column.
        for one, two in zip(fa, fb, strict=True):
            kinds.add(one["properties"]["cluster"])
            assert one["properties"] == two["properties"]
            # A cluster sits at its venues' mean, which each database sums in its own
            # order: a tile unit apart at most. Venues' positions are exact.
            tolerance = 1 if one["properties"]["cluster"] else 0
            for ca, cb in zip(one["geometry"]["coordinates"], two["geometry"]["coordinates"],
                              strict=True):
                assert abs(ca - cb) <= tolerance, (z, x, y, one, two)
    assert kinds == {True, False}  # clusters and venues both compared
    assert lite.get(f"{BASE}/14/0/0").status_code == pg.get(f"{BASE}/14/0/0").status_code == 204


def test_cluster_cache_keeps_tiles_for_its_seconds_and_its_size():
    now = [100.0]
    cache = tiles.ClusterCache(seconds=60, size=2, clock=lambda: now[0])
    a, b, c = tiles.Tile(4, 13, 6), tiles.Tile(5, 26, 12), tiles.Tile(6, 52, 24)
    cache.put(a, b"A")
    now[0] = 159.0
    assert cache.get(a) == b"A"
    now[0] = 160.0
    assert cache.get(a) is None
    cache.put(a, b"A")
    cache.put(b, b"B")
    cache.get(a)  # a is now the most recently used
    cache.put(c, b"C")
    assert cache.get(b) is None
    assert cache.get(a) == b"A"
    assert cache.get(c) == b"C"


def test_a_crowded_tile_is_built_once_in_its_max_age(app, client, crowded):
    x, y, _, _ = locate(*MIDDLE, 10)
    first = client.get(f"{BASE}/10/{x}/{y}")
    load(app, [feature(f"late{i}", MIDDLE[0], MIDDLE[1], "park") for i in range(5)])
    again = client.get(f"{BASE}/10/{x}/{y}")
    assert again.headers["ETag"] == first.headers["ETag"]
    cache = app.extensions["voicemap.cluster_tiles"]
    cache.clock = lambda: time.monotonic() + tiles.CLUSTER_SECONDS
    fresh = decode(client.get(f"{BASE}/10/{x}/{y}").data)
    assert sum(f["properties"]["point_count"] for f in fresh) == CROWD + 5
