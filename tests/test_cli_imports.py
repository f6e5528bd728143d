"""Light commands stay light: what ``voicemap --help`` and a GeoJSON export import.

Each runs in a fresh interpreter, which then lists the modules it loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import feature, load

from voicemap import cli, exchange

AUDIO_AND_GEODATA = ("numpy", "pydub", "geopandas", "pandas", "folium", "shapely", "pyproj",
                     "pyogrio")
SCRIPT = """
import json, sys
from voicemap.cli import main
try:
    main(sys.argv[1:], prog_name="voicemap", standalone_mode=False)
finally:
    print(json.dumps(sorted(m for m in sys.modules if "." not in m)), file=sys.stderr)
"""


def loaded_by(*args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


def test_help_loads_neither_audio_nor_geodata_nor_the_app():
    loaded = loaded_by("--help")
    for heavy in (*AUDIO_AND_GEODATA, "flask", "sqlalchemy"):
        assert heavy not in loaded


def test_export_to_geojson_loads_no_map_no_audio_no_gdal(app, tmp_path):
    load(app, [feature("light-1", 116.39, 39.91)])
    out = tmp_path / "venues.geojson"
    loaded = loaded_by("--database-url", app.config["DATABASE_URL"], "export", "-o", str(out))
    for heavy in ("pydub", "folium", "pandas", "geopandas", "pyogrio"):
        assert heavy not in loaded
    ids = [f["properties"]["id"] for f in json.loads(out.read_text())["features"]]
    assert ids == ["light-1"]


def test_export_formats_are_the_exchange_formats():
    assert cli.EXPORT_FORMATS == exchange.FORMATS
