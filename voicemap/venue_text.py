"""Venue facts as interface text: ages, access, "go there" links and the website link.

Used by the venue page; ``web/static/vm/map.js`` and ``go.js`` say the same in the map's
popup (a test compares the links). Pure functions: no Flask, no database.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def ages_text(p: dict[str, Any], t: dict[str, str]) -> str | None:
    """"3–12 years", "6 years and up", "All ages" (from 0, no upper bound), ... or None when
    the registry says nothing. A lower bound of 0 is no bound ("Up to 14", not "0–14")."""
    lo, hi = p.get("min_age"), p.get("max_age")
    if lo == 0:
        if hi is None:
            return t["ven_all_ages"]
        lo = None
    if lo is not None and hi is not None:
        return t.gettext("ages_range", min=lo, max=hi)
    if lo is not None:
        return t.gettext("ages_min", min=lo)
    if hi is not None:
        return t.gettext("ages_max", max=hi)
    return None


def access_facts(p: dict[str, Any], t: dict[str, str]) -> list[tuple[bool, str]]:
    """(is it so, label) for each access fact the registry knows."""
    out = []
    for field, yes, no in (("step_free", "step_free", "not_step_free"),
                           ("stroller_friendly", "stroller", "not_stroller"),
                           ("baby_care_room", "baby_room", "no_baby_room")):
        if p.get(field) is not None:
            out.append((bool(p[field]), t[yes] if p[field] else t[no]))
    return out


def map_app_links(name: str, lon: float, lat: float, address: str = "") -> dict[str, str]:
    """Links that open the venue (WGS-84 ``lon``, ``lat``) in the phone's map app ("go
    there"), each in the datum it expects; ``web/static/vm/go.js`` builds the same in the
    map's popup (a test compares them).

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
    q = quote(name, safe="")
    return {
        "amap": f"https://uri.amap.com/marker?position={glon:.6f},{glat:.6f}&name={q}"
                "&src=voicemap&coordinate=gaode&callnative=1",
        "baidu": f"https://api.map.baidu.com/marker?location={blat:.6f},{blon:.6f}&title={q}"
                 f"&content={quote(address or name, safe='')}&output=html&coord_type=bd09ll"
                 "&src=webapp.voicemap.voicemap",
        "apple": f"https://maps.apple.com/?ll={glat:.6f},{glon:.6f}&q={q}",
    }


def web_link(url: str | None) -> dict[str, str] | None:
    """An http(s) link as {href, host}; anything else (javascript:, data:) is dropped."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return {"href": parts.geturl(), "host": parts.hostname or parts.netloc}
