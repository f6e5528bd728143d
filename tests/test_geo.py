from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from voicemap import geo
from voicemap.errors import BadRequest


def test_gcj02_offset_in_beijing_is_hundreds_of_metres():
    lon, lat = 116.3913, 39.9087  # Tiananmen Gate, WGS-84
    glon, glat = geo.wgs84_to_gcj02(lon, lat)
    offset = geo.distance_m(lon, lat, glon, glat)
    assert 300 < offset < 800
    assert glon > lon  # GCJ-02 is shifted north-east in Beijing
    assert glat > lat


@pytest.mark.parametrize("seed", range(5))
def test_gcj02_round_trip_within_a_millimetre(seed):
    rng = random.Random(seed)
    for _ in range(200):
        lon, lat = rng.uniform(115.4, 117.5), rng.uniform(39.4, 41.1)
        back = geo.gcj02_to_wgs84(*geo.wgs84_to_gcj02(lon, lat))
        assert geo.distance_m(lon, lat, *back) < 0.001


# Published reference values from independent implementations (not ours, not a round trip):
# googollee/eviltransform, python/test.py: (wgs lat, wgs lng, gcj lat, gcj lng), which it
# checks to 6 decimal places (assertAlmostEqual(..., 6)), its inverse to 0.5 m.
EVILTRANSFORM = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]
# wandergis/coordtransform, test/app.js ("//result"): wgs84togcj02(116.404, 39.915).
COORDTRANSFORM = [(39.915, 116.404, 39.91640428150164, 116.41024449916938)]
REFERENCE = EVILTRANSFORM + COORDTRANSFORM
JS = Path(__file__).resolve().parent.parent / "web" / "static" / "vm" / "gcj02.js"


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), REFERENCE)
def test_gcj02_forward_matches_published_longitude(wlat, wlon, glat, glon):
    assert geo.wgs84_to_gcj02(wlon, wlat)[0] == pytest.approx(glon, abs=5e-7)


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), REFERENCE)
def test_gcj02_forward_matches_published_latitude(wlat, wlon, glat, glon):
    assert geo.wgs84_to_gcj02(wlon, wlat)[1] == pytest.approx(glat, abs=5e-7)


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), REFERENCE)
def test_gcj02_inverse_finds_the_published_wgs84_point(wlat, wlon, glat, glon):
    lon, lat = geo.gcj02_to_wgs84(glon, glat)
    assert geo.distance_m(lon, lat, wlon, wlat) < 0.05  # eviltransform's exact inverse: 0.5 m


def run_js(expression: str):
    """``expression`` evaluated by Node.js with ``g`` = the map's gcj02.js module."""
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "Node.js is needed (scripts/setup installs it for the map's assets)"
    script = f"const g = require({json.dumps(str(JS))}); console.log(JSON.stringify({expression}))"
    res = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_gcj02_js_forward_matches_published_values():
    points = json.dumps([[wlon, wlat] for wlat, wlon, _, _ in REFERENCE])
    got = run_js(f"{points}.map(p => g.wgs84ToGcj02(p[0], p[1]))")
    expected = [[glon, glat] for _, _, glat, glon in REFERENCE]
    assert got == [pytest.approx(e, abs=5e-7) for e in expected]


def test_gcj02_js_inverse_finds_the_published_wgs84_points():
    points = json.dumps([[glon, glat] for _, _, glat, glon in REFERENCE])
    got = run_js(f"{points}.map(p => g.gcj02ToWgs84(p[0], p[1]))")
    distances = [geo.distance_m(lon, lat, wlon, wlat)
                 for (lon, lat), (wlat, wlon, _, _) in zip(got, REFERENCE, strict=True)]
    assert max(distances) < 0.05


def test_gcj02_is_identity_outside_china():
    assert geo.wgs84_to_gcj02(-0.1276, 51.5072) == (-0.1276, 51.5072)
    assert geo.gcj02_to_wgs84(139.69, 35.68 + 25) == (139.69, 60.68)


def test_to_wgs84_rejects_unknown_datum():
    with pytest.raises(BadRequest, match="datum"):
        geo.to_wgs84(116.4, 39.9, "bd09")


@pytest.mark.parametrize("lat", [-60.0, 0.0, 39.9, 75.0])
def test_degree_box_holds_the_whole_circle(lat):
    rng = random.Random(int(lat))
    lon = 116.4
    for radius in (10.0, 1_000.0, 50_000.0, 500_000.0):
        minlon, minlat, maxlon, maxlat = geo.degree_box(lon, lat, radius)
        for _ in range(360):
            az = rng.uniform(-180, 180)
            plon, plat, _ = geo.WGS84.fwd(lon, lat, az, radius)
            assert minlon <= plon <= maxlon
            assert minlat <= plat <= maxlat


@pytest.mark.parametrize("lon,lat,param", [(181, 0, "lon"), (0, -91, "lat"),
                                           (float("nan"), 0, "lon")])
def test_check_lon_lat_names_the_parameter(lon, lat, param):
    with pytest.raises(BadRequest) as err:
        geo.check_lon_lat(lon, lat)
    assert err.value.details["param"] == param


# BD-09 (Baidu): wandergis/coordtransform, test/app.js ("//result"): gcj02tobd09(116.404,
# 39.915); and the R package baidumap's bd2gcj example, Beijing railway station to 5 places.
BD09 = [((116.404, 39.915), (116.41036949371029, 39.92133699351021), 1e-9),
        ((116.42703, 39.90245), (116.43351, 39.90851), 1e-5)]


@pytest.mark.parametrize(("gcj", "bd", "tol"), BD09)
def test_bd09_forward_matches_published_values(gcj, bd, tol):
    got = geo.gcj02_to_bd09(*gcj)
    assert got[0] == pytest.approx(bd[0], abs=tol) and got[1] == pytest.approx(bd[1], abs=tol)


@pytest.mark.parametrize(("gcj", "bd", "tol"), BD09)
def test_bd09_inverse_finds_the_published_gcj02_point(gcj, bd, tol):
    lon, lat = geo.bd09_to_gcj02(*bd)
    assert geo.distance_m(lon, lat, *gcj) < max(0.01, tol * 111_000)


def test_bd09_round_trip_and_offset_in_beijing():
    rng = random.Random(7)
    for _ in range(200):
        lon, lat = rng.uniform(115.4, 117.5), rng.uniform(39.4, 41.1)
        b = geo.wgs84_to_bd09(lon, lat)
        assert geo.distance_m(lon, lat, *geo.bd09_to_wgs84(*b)) < 0.001
        # BD-09 is GCJ-02 moved again, some 700 m to 1.3 km from WGS-84 in Beijing
        assert 700 < geo.distance_m(lon, lat, *b) < 1500


def test_bd09_js_matches_python():
    points = [[116.404, 39.915], [116.42703, 39.90245], [116.3913, 39.9087], [115.5, 40.9]]
    got = run_js(f"{json.dumps(points)}.map(p => [g.gcj02ToBd09(p[0], p[1]), "
                 "g.bd09ToGcj02(p[0], p[1]), g.wgs84ToBd09(p[0], p[1])])")
    for (lon, lat), (fwd, inv, wb) in zip(points, got, strict=True):
        assert fwd == pytest.approx(geo.gcj02_to_bd09(lon, lat), abs=1e-9)
        assert inv == pytest.approx(geo.bd09_to_gcj02(lon, lat), abs=1e-9)
        assert wb == pytest.approx(geo.wgs84_to_bd09(lon, lat), abs=1e-9)
    assert got[0][0] == pytest.approx(list(BD09[0][1]), abs=1e-9)


GO_JS = JS.parent / "go.js"


def test_go_there_links_carry_each_apps_datum_and_match_the_js():
    """Gaode gets GCJ-02, Baidu BD-09 (latitude first), Apple Maps GCJ-02; go.js (the popup)
    builds exactly what venue_text.map_app_links (the venue page) does, real long names included."""
    from urllib.parse import parse_qs, urlsplit

    from voicemap.venue_text import map_app_links

    cases = [("故宫博物院", 116.3913, 39.9152, "北京市东城区景山前街4号"),
             ("The Palace Museum (Forbidden City)", 116.3913, 39.9152, "4 Jingshan Front St"),
             ("Museum of the War of Chinese People's Resistance Against Japanese Aggression",
              116.2237, 39.8515, ""),
             ("北京大运河博物馆（首都博物馆东馆）", 116.6795, 39.9006, "通州区 & <b>")]
    for name, lon, lat, address in cases:
        py = map_app_links(name, lon, lat, address)
        node = shutil.which("node") or shutil.which("nodejs")
        script = (f"const go = require({json.dumps(str(GO_JS))}); console.log(JSON.stringify("
                  f"go.links({json.dumps(name)}, {lon}, {lat}, {json.dumps(address)})))")
        res = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout) == py
        amap = parse_qs(urlsplit(py["amap"]).query)
        glon, glat = map(float, amap["position"][0].split(","))
        assert geo.distance_m(glon, glat, *geo.wgs84_to_gcj02(lon, lat)) < 0.2
        assert amap["coordinate"] == ["gaode"] and amap["name"] == [name]
        baidu = parse_qs(urlsplit(py["baidu"]).query)
        blat, blon = map(float, baidu["location"][0].split(","))
        assert geo.distance_m(blon, blat, *geo.wgs84_to_bd09(lon, lat)) < 0.2
        assert baidu["coord_type"] == ["bd09ll"] and baidu["title"] == [name]
        apple = parse_qs(urlsplit(py["apple"]).query)
        alat, alon = map(float, apple["ll"][0].split(","))
        assert geo.distance_m(alon, alat, glon, glat) < 0.2 and apple["q"] == [name]
