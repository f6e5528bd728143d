from __future__ import annotations

import random

import pytest

from voicemap import geo
from voicemap.errors import BadRequest


def test_gcj02_offset_in_beijing_is_hundreds_of_metres():
    lon, lat = 116.3913, 39.9087  # Tiananmen Gate, WGS-84
    glon, glat = geo.wgs84_to_gcj02(lon, lat)
    offset = geo.distance_m(lon, lat, glon, glat)
    assert 300 < offset < 800
    assert glon > lon and glat > lat  # GCJ-02 is shifted north-east in Beijing


@pytest.mark.parametrize("seed", range(5))
def test_gcj02_round_trip_within_a_millimetre(seed):
    rng = random.Random(seed)
    for _ in range(200):
        lon, lat = rng.uniform(115.4, 117.5), rng.uniform(39.4, 41.1)
        back = geo.gcj02_to_wgs84(*geo.wgs84_to_gcj02(lon, lat))
        assert geo.distance_m(lon, lat, *back) < 0.001


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
            assert minlon <= plon <= maxlon and minlat <= plat <= maxlat


@pytest.mark.parametrize("lon,lat,param", [(181, 0, "lon"), (0, -91, "lat"),
                                           (float("nan"), 0, "lon")])
def test_check_lon_lat_names_the_parameter(lon, lat, param):
    with pytest.raises(BadRequest) as err:
        geo.check_lon_lat(lon, lat)
    assert err.value.details["param"] == param
