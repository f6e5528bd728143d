"""Small builders for registry test data."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from voicemap import categories, db, venues
from voicemap.config import BEIJING_SERVICE_AREA
from voicemap.exchange import check

# Central Beijing, where the synthetic venues fall.
BOX = (116.10, 39.75, 116.70, 40.10)


def feature(vid: str, lon: float, lat: float, category: str = "museum",
            **props: Any) -> dict[str, Any]:
    """A valid venue Feature with the required properties filled in."""
    properties = {"id": vid, "name_zh": f"场馆{vid}", "name_en": f"Venue {vid}",
                  "category": category, **props}
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": properties}


def collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


def write(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(collection(features), ensure_ascii=False), encoding="utf-8")
    return path


def random_features(n: int, seed: int = 1, box=BOX) -> list[dict[str, Any]]:
    """n venues at random points in ``box``, all categories, some sharing exact positions."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 25 == 24 and out:  # an exact duplicate position: a tie to order by id
            lon, lat = out[rng.randrange(len(out))]["geometry"]["coordinates"]
        else:
            lon = round(rng.uniform(box[0], box[2]), 7)
            lat = round(rng.uniform(box[1], box[3]), 7)
        cat = categories.IDS[i % len(categories.IDS)]
        out.append(feature(f"v{i:05d}", lon, lat, cat))
    return out


def load(app, features: list[dict[str, Any]]) -> None:
    """Put these venues in the app's database through the registry's own upsert."""
    checked = check(features, BEIJING_SERVICE_AREA)
    assert not checked.problems, checked.problems
    with app.app_context(), db.session_scope() as session:
        venues.upsert(session, checked.records)
