"""data/venues.geojson: the real registry meets the programme's spec and imports cleanly."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from helpers import ROOT_DATA

from voicemap import categories
from voicemap.config import BEIJING_SERVICE_AREA
from voicemap.exchange import check, read

DISTRICTS = {"Dongcheng", "Xicheng", "Chaoyang", "Haidian", "Fengtai", "Shijingshan",
             "Mentougou", "Fangshan", "Tongzhou", "Shunyi", "Changping", "Daxing", "Huairou",
             "Pinggu", "Miyun", "Yanqing"}


@pytest.fixture(scope="module")
def doc():
    return json.loads(ROOT_DATA.read_text(encoding="utf-8"))


def test_is_rfc7946_feature_collection_of_points(doc):
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    for f in doc["features"]:
        assert f["geometry"]["type"] == "Point"
        lon, lat = f["geometry"]["coordinates"]
        assert 115.4 < lon < 117.6 and 39.4 < lat < 41.1  # longitude first, in Beijing


def test_every_feature_validates(doc):
    checked = check(read(ROOT_DATA), BEIJING_SERVICE_AREA)
    assert checked.problems == [] and len(checked.records) == len(doc["features"])


def test_covers_the_programme(doc):
    props = [f["properties"] for f in doc["features"]]
    assert len(props) >= 100
    per_category = Counter(p["category"] for p in props)
    assert set(per_category) == set(categories.IDS)
    assert min(per_category.values()) >= 5
    districts = Counter(p["district"] for p in props)
    assert set(districts) <= DISTRICTS and len(districts) >= 10
    for p in props:
        assert p["name_zh"] and p["name_en"] and (p.get("address_zh") or p.get("address_en"))
        assert p["id"] == p["id"].lower()
    assert len({p["id"] for p in props}) == len(props)
