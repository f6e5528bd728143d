"""The printable exhibition set of a campaign (``voicemap campaign exhibit ID -o DIR``).

For every award-winning public work of a campaign whose results are published: one A4 page
as a self-contained HTML file (``<work id>.html``: the display rendition embedded, title,
the child's first name and age, the story, the award in Chinese and English, a QR code to
the work's public page; print styles, no scripts, nothing fetched), ``all.html`` with every
page in one document, ``catalogue.csv`` (UTF-8 with a byte-order mark) and
``catalogue.geojson`` (where the works are pinned: WGS-84, a venue's point or the ~500 m
grid cell's centre; works without a point have a null geometry), and ``exhibition.pdf``
when WeasyPrint is installed (``pip install weasyprint``; Chinese needs a CJK font such as
fonts-wqy-microhei).
"""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path
from typing import Any

import segno
from flask import Flask, render_template

from . import db, i18n, judging
from .errors import BadRequest
from .storage import media_store

CATALOGUE_COLUMNS = ("work_id", "award", "kind", "age_group", "title", "narrator_name",
                     "narrator_age", "venue_id", "venue_name_zh", "venue_name_en", "lon",
                     "lat", "page_url", "file")


def _public_base(app: Flask) -> str:
    base = (app.config.get("PUBLIC_URL") or "").rstrip("/")
    if not base:
        raise BadRequest("set VOICEMAP_PUBLIC_URL (e.g. https://voicemap.example.org) so that "
                         "the pages' QR codes point at the public site")
    return base


def write(app: Flask, campaign_id: str, out_dir: str | Path,
          pdf: bool | None = None) -> dict[str, Any]:
    """Write the set; what was written: ``pages`` (paths), ``catalogue``, ``geojson``,
    ``pdf`` (a path, or None with ``pdf_note`` saying why)."""
    base = _public_base(app)
    out = Path(out_dir)
    with app.app_context():
        session = db.get_session()
        campaign, found = judging.exhibition(session, campaign_id)
        store = media_store()
        zh, en = i18n.strings("zh"), i18n.strings("en")
        out.mkdir(parents=True, exist_ok=True)
        sheets, rows, features = [], [], []
        for w in found:
            url = f"{base}/works/{w.id}"
            image = None
            if w.display_sha256:
                data = b"".join(store.read_range("renditions", w.display_sha256, 0,
                                                 store.size("renditions", w.display_sha256)
                                                 or 0))
                image = f"data:{w.display_type};base64,{base64.b64encode(data).decode()}"
            sheet = {"w": w, "url": url, "image": image,
                     "qr": segno.make(url, error="m").svg_inline(omitsize=True, border=0),
                     "award_zh": zh[f"judge_award_{w.award}"],
                     "award_en": en[f"judge_award_{w.award}"],
                     "kind_zh": zh.get(f"works_kind_{w.kind}", w.kind),
                     "kind_en": en.get(f"works_kind_{w.kind}", w.kind),
                     "by_zh": zh.gettext("works_by", name=w.narrator_name,
                                         age=w.narrator_age),
                     "by_en": en.gettext("works_by", name=w.narrator_name,
                                         age=w.narrator_age)}
            sheets.append(sheet)
            path = out / f"{w.id}.html"
            path.write_text(_render(campaign, [sheet]), encoding="utf-8")
            lon = round(w.lon, 6) if w.geom is not None else None
            lat = round(w.lat, 6) if w.geom is not None else None
            venue = w.venue
            row = {"work_id": w.id, "award": w.award, "kind": w.kind,
                   "age_group": w.age_group, "title": w.title,
                   "narrator_name": w.narrator_name, "narrator_age": w.narrator_age,
                   "venue_id": w.venue_id, "venue_name_zh": venue.name_zh if venue else None,
                   "venue_name_en": venue.name_en if venue else None, "lon": lon, "lat": lat,
                   "page_url": url, "file": path.name}
            rows.append(row)
            features.append({"type": "Feature", "id": w.id,
                             "geometry": ({"type": "Point", "coordinates": [lon, lat]}
                                          if lon is not None else None),
                             "properties": {k: v for k, v in row.items()
                                            if k not in ("lon", "lat")}})
        (out / "all.html").write_text(_render(campaign, sheets), encoding="utf-8")
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CATALOGUE_COLUMNS)
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in CATALOGUE_COLUMNS])
    (out / "catalogue.csv").write_bytes(("\ufeff" + buf.getvalue()).encode("utf-8"))
    geojson = {"type": "FeatureCollection", "name": f"{campaign_id} award-winning works",
               "crs_note": "WGS-84 (EPSG:4326) longitude, latitude", "features": features}
    (out / "catalogue.geojson").write_text(json.dumps(geojson, ensure_ascii=False, indent=1),
                                           encoding="utf-8")
    result: dict[str, Any] = {"pages": [out / f"{r['work_id']}.html" for r in rows],
                              "all": out / "all.html", "catalogue": out / "catalogue.csv",
                              "geojson": out / "catalogue.geojson", "pdf": None,
                              "pdf_note": None}
    if pdf is not False:
        try:
            from weasyprint import HTML
        except ImportError:
            result["pdf_note"] = "no PDF: WeasyPrint is not installed (pip install weasyprint)"
        else:
            HTML(filename=str(out / "all.html")).write_pdf(out / "exhibition.pdf")
            result["pdf"] = out / "exhibition.pdf"
    return result


def _render(campaign, sheets: list[dict[str, Any]]) -> str:
    from markupsafe import Markup

    for s in sheets:
        s["qr"] = Markup(s["qr"])  # segno's own SVG markup
    title = (f"{sheets[0]['w'].title} · {campaign.title_zh}" if len(sheets) == 1
             else f"{campaign.title_zh} · {campaign.title_en}")
    return render_template("judging/exhibit_page.html", sheets=sheets, campaign=campaign,
                           title=title)



