"""Venue facts as interface text: ages, access, "go there" links and the website link.

Used by the venue page and posters. How ages, access facts and map-app links read is one
table, ``web/static/vm/facts.json`` (also an asset), which the map's popup follows too
(``vm/map/facts.js`` and ``go.js``; tests compare the two). Pure functions: no Flask, no
database.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from .resources import STATIC_DIR

FACTS: dict[str, Any] = json.loads((STATIC_DIR / "vm" / "facts.json").read_text("utf-8"))


def _age_matches(cond: Any, value: Any, side: str) -> bool:
    unbounded = value in FACTS["ages"]["unbounded"][side]
    if cond == "bounded":
        return not unbounded
    if cond == "unbounded":
        return unbounded
    return value == cond and type(value) is type(cond)  # a number, or None


def ages_text(p: dict[str, Any], t: dict[str, str]) -> str | None:
    """"3–12 years", "6 years and up", "All ages" (from 0, no upper bound), ... or None when
    the registry says nothing. A lower bound of 0 is no bound ("Up to 14", not "0–14")."""
    lo, hi = p.get("min_age"), p.get("max_age")
    for rule in FACTS["ages"]["rules"]:
        if _age_matches(rule["min"], lo, "min") and _age_matches(rule["max"], hi, "max"):
            return t.gettext(rule["text"], min=lo, max=hi)
    return None


def access_facts(p: dict[str, Any], t: dict[str, str]) -> list[tuple[bool, str]]:
    """(is it so, label) for each access fact the registry knows."""
    return [(bool(p[f["field"]]), t[f["yes"]] if p[f["field"]] else t[f["no"]])
            for f in FACTS["access"] if p.get(f["field"]) is not None]


def map_app_links(name: str, lon: float, lat: float, address: str = "") -> dict[str, str]:
    """Links that open the venue (WGS-84 ``lon``, ``lat``) in the phone's map app ("go
    there"), each in the datum it expects, from the URL templates in facts.json, which
    ``web/static/vm/go.js`` fills the same way in the map's popup (a test compares them).

    - Gaode/Amap's URI API, ``coordinate=gaode``: GCJ-02; ``callnative=1`` opens the app
      where it is installed, else Amap's web page.
    - Baidu's URI API, ``coord_type=bd09ll``: BD-09, ``location`` is latitude first.
    - Apple Maps (iOS): in mainland China it shows AutoNavi's GCJ-02 map, and places given
      in WGS-84 land some 500 m off (as MapKit annotations do); so GCJ-02 there too (outside
      China the two coincide).
    """
    from urllib.parse import quote

    from .geo import wgs84_to_bd09, wgs84_to_gcj02

    glon, glat = wgs84_to_gcj02(lon, lat)
    blon, blat = wgs84_to_bd09(lon, lat)
    values = {"gcj_lon": f"{glon:.6f}", "gcj_lat": f"{glat:.6f}", "bd_lon": f"{blon:.6f}",
              "bd_lat": f"{blat:.6f}", "name": quote(name, safe=""),
              "address": quote(address or name, safe="")}
    return {app: url.format(**values) for app, url in FACTS["map_apps"].items()}


def web_link(url: str | None) -> dict[str, str] | None:
    """An http(s) link as {href, host}; anything else (javascript:, data:) is dropped."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return {"href": parts.geturl(), "host": parts.hostname or parts.netloc}
