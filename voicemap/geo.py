"""Datums, geodesic distance and point checks.

Everything stored and returned by voicemap is WGS-84 (EPSG:4326), longitude first. GCJ-02 is
the obfuscated datum that Chinese web maps (Gaode/AMap, Tencent) and WeChat's location API use;
inside mainland China it is offset from WGS-84 by a few hundred metres (about 500 m in
Beijing). Conversions here follow the published GCJ-02 forward formula; the inverse is solved
by fixed-point iteration to well under a centimetre.

BD-09 is Baidu Maps' datum: GCJ-02 shifted again by Baidu's published formula (about 0.0065
degrees east and 0.006 north in Beijing, some 700 m). voicemap only writes it, for links that
open a venue in Baidu's app ("go there"); its inverse is solved the same way.
"""

from __future__ import annotations

import math
from typing import Literal

from pyproj import Geod

from .errors import BadRequest

Datum = Literal["wgs84", "gcj02"]
DATUMS: tuple[str, ...] = ("wgs84", "gcj02")

WGS84 = Geod(ellps="WGS84")

# Krasovsky 1940 ellipsoid, used by the GCJ-02 formula.
_A = 6378245.0
_EE = 0.00669342162296594323


def _outside_china(lon: float, lat: float) -> bool:
    # The rough rectangle that GCJ-02 implementations conventionally use: outside it the
    # datum is not applied, so WGS-84 and GCJ-02 coincide.
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _delta(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y
            + 0.2 * math.sqrt(abs(x)))
    dlat += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2 / 3
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x)))
    dlon += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    dlon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
    dlon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Convert a WGS-84 point to GCJ-02 (unchanged outside China)."""
    if _outside_china(lon, lat):
        return lon, lat
    dlon, dlat = _delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Convert a GCJ-02 point to WGS-84 (unchanged outside China), exact to about 1 mm."""
    if _outside_china(lon, lat):
        return lon, lat
    wlon, wlat = lon, lat
    for _ in range(30):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = glon - lon, glat - lat
        wlon, wlat = wlon - elon, wlat - elat
        if abs(elon) < 1e-10 and abs(elat) < 1e-10:
            break
    return wlon, wlat


_X_PI = math.pi * 3000.0 / 180.0


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """Convert a GCJ-02 point to BD-09 (Baidu's published formula, applied everywhere)."""
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Convert a BD-09 point to GCJ-02, by fixed-point iteration of the forward formula."""
    glon, glat = lon - 0.0065, lat - 0.006
    for _ in range(30):
        blon, blat = gcj02_to_bd09(glon, glat)
        elon, elat = blon - lon, blat - lat
        glon, glat = glon - elon, glat - elat
        if abs(elon) < 1e-10 and abs(elat) < 1e-10:
            break
    return glon, glat


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """A WGS-84 point in BD-09 (through GCJ-02, as Baidu defines it)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """A BD-09 point in WGS-84."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(lon: float, lat: float, datum: str) -> tuple[float, float]:
    """A point given in ``datum`` expressed in WGS-84."""
    if datum == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if datum == "wgs84":
        return lon, lat
    raise BadRequest(f"unknown datum {datum!r}; use one of {', '.join(DATUMS)}", param="crs")


def from_wgs84(lon: float, lat: float, datum: str) -> tuple[float, float]:
    """A WGS-84 point expressed in ``datum``."""
    if datum == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if datum == "wgs84":
        return lon, lat
    raise BadRequest(f"unknown datum {datum!r}; use one of {', '.join(DATUMS)}", param="crs")


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance on the WGS-84 ellipsoid, in metres."""
    return WGS84.inv(lon1, lat1, lon2, lat2)[2]


def check_lon_lat(lon: float, lat: float) -> None:
    """Raise BadRequest unless (lon, lat) is a finite point on the globe."""
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise BadRequest(f"lon must be between -180 and 180, got {lon}", param="lon")
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise BadRequest(f"lat must be between -90 and 90, got {lat}", param="lat")


def degree_box(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box that surely contains every point within ``radius_m`` of (lon, lat).

    Conservative: a degree of latitude is at least 110,574 m, and a degree of longitude at
    latitude phi at least 111,320 cos(phi) m, taken at the box's most poleward latitude. The
    box is clamped to the globe (no antimeridian wrap: voicemap serves one city).
    """
    margin = 1.01
    dlat = radius_m / 110_574.0 * margin
    far_lat = min(89.999999, abs(lat) + dlat)
    cos_far = math.cos(math.radians(far_lat))
    if far_lat >= 89.9 or cos_far <= 1e-6:
        dlon = 360.0
    else:
        dlon = radius_m / (111_320.0 * cos_far) * margin
    return (max(-180.0, lon - dlon), max(-90.0, lat - dlat),
            min(180.0, lon + dlon), min(90.0, lat + dlat))
