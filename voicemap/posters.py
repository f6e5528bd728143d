"""Printable posters: one A4 page per venue with both names and a QR code to its page."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import segno
from flask import Flask, render_template

from . import categories, db, venues
from .assets import categories_css
from .errors import BadRequest


def venue_page_url(app: Flask, venue_id: str) -> str:
    """The public address of a venue's page, from PUBLIC_URL.

    :raises BadRequest: PUBLIC_URL is not set (a poster must not point at localhost).
    """
    base = (app.config.get("PUBLIC_URL") or "").rstrip("/")
    if not base:
        raise BadRequest("set VOICEMAP_PUBLIC_URL (e.g. https://voicemap.example.org) so that "
                         "the posters' QR codes point at the public site")
    return f"{base}/venues/{venue_id}"


def _base_url(app: Flask, fallback_base: str | None) -> str:
    base = (app.config.get("PUBLIC_URL") or fallback_base or "").rstrip("/")
    if not base:
        venue_page_url(app, "")  # raises the BadRequest that says what to set
    return base


def poster_html(app: Flask, venue_id: str, fallback_base: str | None = None) -> str:
    """One venue's poster page (what ``write_posters`` writes as ``<id>.html``), rendered
    in the current app context. The QR code points at PUBLIC_URL, else ``fallback_base``
    (the address /manage was reached at). :raises NotFound: no such venue."""
    feature = json.loads(venues.get_feature(db.get_session(), venue_id))
    p = feature["properties"]
    url = f"{_base_url(app, fallback_base)}/venues/{p['id']}"
    return _render([{"p": p, "url": url,
                     "cat": categories.get(p["category"]) or categories.CATEGORIES[0],
                     "qr": segno.make(url, error="m").svg_inline(omitsize=True, border=0)}])


def qr_file(app: Flask, venue_id: str, fmt: str, fallback_base: str | None = None
            ) -> tuple[bytes, str]:
    """The QR code to a venue's page as an SVG or a PNG (for print: 10 px modules) and its
    media type. :raises NotFound: no such venue."""
    venues.get(db.get_session(), venue_id)
    url = f"{_base_url(app, fallback_base)}/venues/{venue_id}"
    qr = segno.make(url, error="m")
    out = io.BytesIO()
    if fmt == "svg":
        qr.save(out, kind="svg", scale=10, border=4, xmldecl=False, title=url)
        return out.getvalue(), "image/svg+xml"
    qr.save(out, kind="png", scale=10, border=4)
    return out.getvalue(), "image/png"


def write_posters(app: Flask, out_dir: str | Path) -> list[Path]:
    """Write ``<venue id>.html`` for every venue (and ``all.html`` with every poster).

    Each file is self-contained and prints as A4: name in Chinese and English, category,
    a QR code to ``PUBLIC_URL/venues/<id>`` and a short bilingual "scan to hear" line.
    Returns the per-venue files, in id order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    everything: list[dict[str, Any]] = []
    with app.app_context(), db.engine().connect() as conn:
        for feature in venues.parse(venues.iter_features(conn)):
            p = feature["properties"]
            url = venue_page_url(app, p["id"])
            poster = {"p": p, "url": url,
                      "cat": categories.get(p["category"]) or categories.CATEGORIES[0],
                      "qr": segno.make(url, error="m").svg_inline(omitsize=True, border=0)}
            everything.append(poster)
            path = out / f"{p['id']}.html"
            path.write_text(_render([poster]), encoding="utf-8")
            written.append(path)
        (out / "all.html").write_text(_render(everything), encoding="utf-8")
    return written


def _render(posters: list[dict[str, Any]]) -> str:
    from markupsafe import Markup

    for poster in posters:
        poster["qr"] = Markup(poster["qr"])  # segno's own SVG markup
    title = (f"{posters[0]['p']['name_zh']} · {posters[0]['p']['name_en']}" if len(posters) == 1
             else "童声地图 · Kids' Voice Map")
    return render_template("poster.html", posters=posters, title=title,
                           categories_css=Markup(categories_css()))
