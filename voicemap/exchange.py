"""Reading and writing registry files, with a validation report for every feature.

Pure: paths and dicts in, records and problems out; no database. GeoJSON is read and
written directly (streamed on output); GeoPackage, Shapefile and anything else GDAL reads
go through geopandas/pyogrio, and CSV through pandas with lon/lat columns. All records are
WGS-84 longitude/latitude. Writing GeoJSON needs only the standard library (so the command
line's export stays light); pyproj, pandas and GDAL are imported where they are used."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import categories, libs
from .errors import BadRequest
from .fields import VENUE_BOOL_FIELDS, VENUE_FIELDS, VENUE_INT_FIELDS, VENUE_TEXT_FIELDS

FORMATS = ("geojson", "gpkg", "csv", "shp")
SUFFIXES = {"geojson": ".geojson", "gpkg": ".gpkg", "csv": ".csv", "shp": ".shp"}
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
REQUIRED = ("name_zh", "name_en", "category")
MAX_TEXT = 2000
# The registry's licence, as published in the data dictionary; a field may name its own.
LICENCE = "not yet stated by the publisher (set VOICEMAP_DATA_LICENCE)"
DATUM = "WGS 84 (EPSG:4326), longitude first"
# Every file written is readable by all, like any published data set (mkstemp makes 0600).
FILE_MODE = 0o644
# GeoPackage 1.3: the newest that Debian 12's GDAL (3.6) reads without a warning; the
# GDAL in pyogrio's wheel would write 1.4 by default.
GPKG_VERSION = "1.3"


@dataclass(frozen=True)
class Field:
    """One exported field: the data dictionary's entry for it."""

    name: str
    type: str  # text, integer, boolean, real or Point
    meaning: str
    unit: str = ""
    datum: str = ""
    shp: str = ""  # the Shapefile name, where ``name`` is longer than 10 characters
    licence: str = ""  # where it differs from the registry's

    @property
    def shapefile_name(self) -> str:
        return self.shp or self.name


# The fields every export carries, in order. Adding a field to the exports is one entry
# here (the registry's own columns are in ``models``; a test checks the two agree).
FIELDS = (
    Field("id", "text", "stable identifier: lowercase letters, digits and hyphens"),
    Field("name_zh", "text", "name in Chinese"),
    Field("name_en", "text", "name in English"),
    Field("category", "text", f"one of the nine categories: {', '.join(categories.IDS)}"),
    Field("district", "text", "Beijing district, in English"),
    Field("address_zh", "text", "street address in Chinese"),
    Field("address_en", "text", "street address in English"),
    Field("website", "text", "official website (http or https URL)"),
    Field("opening_hours", "text", "opening hours, free text (e.g. Tue-Sun 09:00-17:00)",
          shp="hours"),
    Field("opening_hours_zh", "text", "the same opening hours in Chinese", shp="hours_zh"),
    Field("description_zh", "text", "short description in Chinese", shp="desc_zh"),
    Field("description_en", "text", "short description in English", shp="desc_en"),
    Field("min_age", "integer", "youngest age the venue suits", unit="years"),
    Field("max_age", "integer", "oldest age the venue suits", unit="years"),
    Field("step_free", "boolean", "step-free access for wheelchairs and prams"),
    Field("stroller_friendly", "boolean", "easy to visit with a stroller", shp="stroller"),
    Field("baby_care_room", "boolean", "has a baby-care (nursing and changing) room",
          shp="baby_care"),
    Field("coord_source", "text", "where the coordinate came from: osm:node/N, osm:way/N, "
          "osm:relation/N, wikidata:QN or a URL (estimate, unverified: not yet sourced)",
          shp="c_source"),
    Field("coord_datum", "text", "datum of that source before conversion to WGS-84: "
          "wgs84, gcj02, bd09 or unknown", shp="c_datum"),
    Field("coord_precision_m", "integer", "how far the point may be from the place it marks",
          unit="metres", shp="c_prec_m"),
    Field("coord_point", "text", "what the point marks: entrance, visitor_centre, building, "
          "centroid or unknown", shp="c_point"),
    Field("coord_note", "text", "how the coordinate was read and converted, caveats",
          shp="c_note"),
    Field("clip_count", "integer", "published child-narrated voice guides", unit="clips"),
)
# The values the coordinate's provenance may take (data/README.md explains them).
COORD_DATUMS = ("wgs84", "gcj02", "bd09", "unknown")
COORD_POINTS = ("entrance", "visitor_centre", "building", "centroid", "unknown")
# Placeholders of a coordinate not yet sourced: honest, but not provenance.
UNSOURCED = ("estimate", "unverified")
COORD_SOURCE = re.compile(r"^(osm:(node|way|relation)/\d+|wikidata:Q\d+|https?://\S+)$")
# A sane range for coord_precision_m: a metre to a district's width.
MAX_PRECISION_M = 50_000
# Where the venue is: the GeoJSON geometry, the GeoPackage and Shapefile point, and in CSV
# the ``lon``/``lat`` columns and the same point as ``WKT`` (which GDAL reads by itself).
GEOMETRY = Field("geometry", "Point", "where the venue is", unit="degrees", datum=DATUM)
FIELD_NAMES = tuple(f.name for f in FIELDS)
CSV_GEOMETRY = ("lon", "lat", "WKT")
# Shapefile field names stop at 10 characters: these are written and read back.
SHAPEFILE_NAMES = {f.name: f.shp for f in FIELDS if f.shp}
FROM_SHAPEFILE = {v: k for k, v in SHAPEFILE_NAMES.items()}
LON_NAMES = ("lon", "lng", "longitude", "x")
LAT_NAMES = ("lat", "latitude", "y")
_CRS84 = {"urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84",
          "urn:ogc:def:crs:EPSG::4326", "EPSG:4326"}
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass
class Problem:
    """One invalid feature: where it is in the file, its id if any, and why."""

    index: int
    id: str | None
    reason: str

    def __str__(self) -> str:
        where = f"feature {self.index}" + (f" ({self.id})" if self.id else "")
        return f"{where}: {self.reason}"


@dataclass
class Checked:
    """The valid records of a file, and the problems of the invalid ones."""

    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    total: int = 0


# --- reading -----------------------------------------------------------------------------


def read(path: str | Path) -> list[dict[str, Any]]:
    """Raw features of a registry file as GeoJSON-like dicts (``id``, ``properties``, ``geometry``).

    :raises BadRequest: the file cannot be read at all (not a file, unknown format, bad JSON).
    """
    path = Path(path)
    if not path.is_file():
        raise BadRequest(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json"):
        return _read_geojson(path)
    if suffix == ".csv":
        return _read_csv(path)
    return _read_gdal(path)


def _read_geojson(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open("rb") as fh:
            doc = json.load(fh)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") not in ("FeatureCollection", "Feature"):
        raise BadRequest(f"{path.name} is not a GeoJSON FeatureCollection")
    crs = doc.get("crs")
    if crs is not None:  # pre-RFC 7946 files; only a WGS-84 lon/lat one is acceptable
        name = (crs.get("properties") or {}).get("name") if isinstance(crs, dict) else None
        if name not in _CRS84:
            raise BadRequest(f"{path.name} declares crs {name!r}; GeoJSON must be WGS-84 "
                             "longitude/latitude (RFC 7946)")
    features = doc.get("features") if doc["type"] == "FeatureCollection" else [doc]
    if not isinstance(features, list):
        raise BadRequest(f"{path.name}: 'features' must be an array")
    return features


def _read_csv(path: Path) -> list[dict[str, Any]]:
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise BadRequest(f"{path.name} is not a readable UTF-8 CSV file: {exc}") from None
    cols = {c.lower(): c for c in df.columns}
    lon_col = next((cols[n] for n in LON_NAMES if n in cols), None)
    lat_col = next((cols[n] for n in LAT_NAMES if n in cols), None)
    if lon_col is None or lat_col is None:
        raise BadRequest(f"{path.name} needs longitude and latitude columns "
                         f"(one of {LON_NAMES} and one of {LAT_NAMES})")
    features = []
    for row in df.to_dict("records"):
        lon, lat = row.pop(lon_col), row.pop(lat_col)
        props = {k: (None if v == "" else v) for k, v in row.items()}
        geometry = {"type": "Point", "coordinates": [_number(lon), _number(lat)]}
        features.append({"type": "Feature", "properties": props, "geometry": geometry})
    return features


def _read_gdal(path: Path) -> list[dict[str, Any]]:
    libs.require_gdal()
    import geopandas as gpd
    import pyogrio.errors

    try:
        gdf = gpd.read_file(path, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise BadRequest(f"{path.name} cannot be read as a GIS file: {exc}") from None
    if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(4326)
    doc = json.loads(gdf.to_json(na="null", drop_id=True))
    for feature in doc["features"]:
        props = feature["properties"]
        for short, full in FROM_SHAPEFILE.items():
            if short in props and full not in props:
                props[full] = props.pop(short)
    return doc["features"]


def _number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


# --- validation --------------------------------------------------------------------------


def check(features: list[dict[str, Any]], service_area: tuple[float, float, float, float],
          datum: str = "wgs84") -> Checked:
    """Validate every feature; valid ones become flat records (``id``, fields, ``lon``, ``lat``).

    ``datum`` says what the file's coordinates are; GCJ-02 ones are converted to WGS-84
    before the service-area check.
    """
    from . import geo  # pyproj: reading files needs it, writing GeoJSON does not

    if datum not in geo.DATUMS:
        raise BadRequest(f"unknown datum {datum!r}; use one of {', '.join(geo.DATUMS)}")
    out = Checked(total=len(features))
    seen: set[str] = set()
    for index, feature in enumerate(features):
        try:
            record = _check_one(feature, service_area, datum)
        except _Invalid as bad:
            out.problems.append(Problem(index, bad.id, bad.reason))
            continue
        if record["id"] in seen:
            out.problems.append(Problem(index, record["id"], "duplicate id in this file"))
            continue
        seen.add(record["id"])
        out.records.append(record)
    return out


class _Invalid(Exception):
    def __init__(self, reason: str, id_: str | None = None) -> None:
        self.reason, self.id = reason, id_


def _check_one(feature: Any, area: tuple[float, float, float, float], datum: str
               ) -> dict[str, Any]:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise _Invalid("not a GeoJSON Feature")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise _Invalid("properties must be an object")
    raw_id = props.get("id", feature.get("id"))
    vid = raw_id.strip() if isinstance(raw_id, str) else None
    if not vid or not ID_PATTERN.match(vid):
        raise _Invalid(f"id must be a slug of lowercase letters, digits and hyphens "
                       f"(at most 64), got {raw_id!r}", vid)
    record: dict[str, Any] = {"id": vid}
    for name in VENUE_FIELDS:
        try:
            record[name] = _coerce(name, props.get(name))
        except ValueError as exc:
            raise _Invalid(f"{name}: {exc}", vid) from None
    for name in REQUIRED:
        if not record[name]:
            raise _Invalid(f"{name} is required", vid)
    if categories.get(record["category"]) is None:
        raise _Invalid(f"unknown category {record['category']!r}; use one of "
                       f"{', '.join(categories.IDS)}", vid)
    if (record["min_age"] is not None and record["max_age"] is not None
            and record["min_age"] > record["max_age"]):
        raise _Invalid("min_age is greater than max_age", vid)
    if record["website"] and not re.match(r"^https?://[^\s<>\"']+$", record["website"]):
        raise _Invalid("website must be an http(s) URL", vid)
    _check_provenance(record, vid)
    record["lon"], record["lat"] = _point(feature.get("geometry"), vid, area, datum)
    return record


def _check_provenance(record: dict[str, Any], vid: str) -> None:
    source = record["coord_source"]
    if source is not None and source not in UNSOURCED and not COORD_SOURCE.match(source):
        raise _Invalid(f"coord_source must be osm:node/N, osm:way/N, osm:relation/N, "
                       f"wikidata:QN, an http(s) URL, or {' or '.join(UNSOURCED)}; "
                       f"got {source!r}", vid)
    for name, allowed in (("coord_datum", COORD_DATUMS), ("coord_point", COORD_POINTS)):
        if record[name] is not None and record[name] not in allowed:
            raise _Invalid(f"{name} must be one of {', '.join(allowed)}; got {record[name]!r}",
                           vid)


def _point(geometry: Any, vid: str, area: tuple[float, float, float, float], datum: str
           ) -> tuple[float, float]:
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        kind = geometry.get("type") if isinstance(geometry, dict) else geometry
        raise _Invalid(f"geometry must be a Point, got {kind!r}", vid)
    coords = geometry.get("coordinates")
    if (not isinstance(coords, list | tuple) or len(coords) < 2
            or not all(isinstance(c, int | float) and not isinstance(c, bool)
                       for c in coords[:2])):
        raise _Invalid("Point coordinates must be [longitude, latitude] numbers", vid)
    lon, lat = float(coords[0]), float(coords[1])
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180
            and -90 <= lat <= 90):
        raise _Invalid(f"coordinates out of range: [{lon}, {lat}]", vid)
    from . import geo

    lon, lat = geo.to_wgs84(lon, lat, datum)
    minlon, minlat, maxlon, maxlat = area
    if not (minlon <= lon <= maxlon and minlat <= lat <= maxlat):
        hint = " (swapped latitude and longitude?)" if minlon <= lat <= maxlon else ""
        raise _Invalid(f"[{lon:.6f}, {lat:.6f}] is outside the service area "
                       f"{list(area)}{hint}", vid)
    # Seven decimals is about a centimetre: exports then re-import to the same values.
    return round(lon, 7), round(lat, 7)


def _coerce(name: str, value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return None
    if name in VENUE_TEXT_FIELDS:
        if not isinstance(value, str):
            raise ValueError(f"must be text, got {value!r}")
        if CONTROL.search(value):
            raise ValueError("contains control characters")
        if len(value) > MAX_TEXT:
            raise ValueError(f"longer than {MAX_TEXT} characters")
        return value
    if name in VENUE_INT_FIELDS:
        if isinstance(value, bool):
            raise ValueError(f"must be a whole number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"must be a whole number, got {value!r}") from None
        if name == "coord_precision_m":
            if not number.is_integer() or not 1 <= number <= MAX_PRECISION_M:
                raise ValueError(f"must be a whole number of metres from 1 to "
                                 f"{MAX_PRECISION_M}, got {value!r}")
        elif not number.is_integer() or not 0 <= number <= 120:
            raise ValueError(f"must be a whole number of years from 0 to 120, got {value!r}")
        return int(number)
    if name in VENUE_BOOL_FIELDS:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError(f"must be true or false, got {value!r}")
    raise AssertionError(name)


# --- writing -----------------------------------------------------------------------------


def dictionary(updated: str | None, licence: str = LICENCE) -> dict[str, Any]:
    """The data dictionary served with every export: each field's type, unit, datum, meaning
    and licence, and when the registry last changed (``updated``, ISO 8601 UTC)."""
    fields = [{"name": f.name, "type": f.type, "unit": f.unit or None, "datum": f.datum or None,
               "meaning": f.meaning, "licence": f.licence or licence}
              for f in (*FIELDS, GEOMETRY)]
    return {"title": "voicemap: child-friendly venues of Beijing", "licence": licence,
            "datum": DATUM, "updated": updated, "fields": fields,
            "shapefile_names": SHAPEFILE_NAMES}


def _head() -> str:
    return '{"type": "FeatureCollection", "features": [\n'


def _tail(metadata: dict[str, Any] | None) -> str:
    # A foreign member (RFC 7946, section 6.1) after the features, so they still stream first.
    if metadata is None:
        return "\n]}\n"
    return '\n], "metadata": ' + json.dumps(metadata, ensure_ascii=False) + "}\n"


def write_geojson(features: Iterable[str], out, metadata: dict[str, Any] | None = None) -> int:
    """Write Feature texts as one RFC 7946 FeatureCollection to a text stream; return count."""
    n = 0
    out.write(_head())
    for text in features:
        out.write(text if n == 0 else ",\n" + text)
        n += 1
    out.write(_tail(metadata))
    return n


def collection_chunks(features: Iterable[str], batch: int = 500,
                      metadata: dict[str, Any] | None = None) -> Iterator[str]:
    """The same FeatureCollection as ``write_geojson``, as a stream of text chunks."""
    yield _head()
    chunk: list[str] = []
    first = True
    for text in features:
        chunk.append(text)
        if len(chunk) >= batch:
            yield ("" if first else ",\n") + ",\n".join(chunk)
            first, chunk = False, []
    if chunk:
        yield ("" if first else ",\n") + ",\n".join(chunk)
    yield _tail(metadata)


def write(features: Iterable[str], path: str | Path, fmt: str,
          metadata: dict[str, Any] | None = None) -> int:
    """Write Feature texts to ``path`` in ``fmt`` atomically (temp files, then rename).

    Streamed: GeoJSON and CSV row by row, GeoPackage and Shapefile in batches through GDAL,
    so memory does not grow with the registry. Every file written (a Shapefile's sidecars,
    a CSV's ``.csvt`` and ``.prj``) is mode 0644. ``metadata`` (the data dictionary) goes
    into GeoJSON as a foreign member and into GeoPackage as GDAL metadata. Returns the
    feature count.
    """
    if fmt not in FORMATS:
        raise BadRequest(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmpdir:
        tmp = Path(tmpdir) / path.name
        if fmt == "geojson":
            with tmp.open("w", encoding="utf-8") as out:
                n = write_geojson(features, out, metadata)
        elif fmt == "csv":
            n = _write_csv(features, tmp)
        else:
            n = _write_gdal(features, tmp, fmt, metadata)
        # Move every file written (a Shapefile is several) next to the target.
        for part in sorted(Path(tmpdir).iterdir()):
            os.chmod(part, FILE_MODE)
            with part.open("rb") as fh:
                os.fsync(fh.fileno())
            os.replace(part, path.parent / (path.stem + part.suffix))
    return n


def _batches(features: Iterable[str], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for text in features:
        batch.append(json.loads(text))
        if len(batch) >= size:
            yield batch
            batch = []
    yield batch  # the last, perhaps empty: an empty registry still gets its layer


def _values(feature: dict[str, Any]) -> tuple[dict[str, Any], float, float]:
    props = feature["properties"]
    lon, lat = feature["geometry"]["coordinates"][:2]
    return {name: props.get(name) for name in FIELD_NAMES}, lon, lat


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _write_csv(features: Iterable[str], path: Path) -> int:
    """UTF-8 with a byte-order mark (Excel on Chinese Windows reads it as UTF-8), ``lon`` and
    ``lat`` columns (our import, pandas) and ``WKT`` (GDAL reads it as the geometry); the
    ``.csvt`` and ``.prj`` beside it make GDAL see typed columns, Points and WGS 84."""
    import csv

    header = ["id", *CSV_GEOMETRY[:2], *FIELD_NAMES[1:], CSV_GEOMETRY[2]]
    n = 0
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for text in features:
            values, lon, lat = _values(json.loads(text))
            x, y = f"{lon:.7f}", f"{lat:.7f}"
            writer.writerow([values["id"], x, y, *(_csv_text(values[k]) for k in FIELD_NAMES[1:]),
                             f"POINT ({x} {y})"])
            n += 1
    csvt = {"lon": "CoordX", "lat": "CoordY", "integer": "Integer"}
    kinds = {f.name: f.type for f in FIELDS}
    types = [csvt.get(name) or csvt.get(kinds.get(name, ""), "String") for name in header]
    path.with_suffix(".csvt").write_text(",".join(f'"{t}"' for t in types) + "\n")
    path.with_suffix(".prj").write_text(_wgs84_wkt())
    return n


def _wgs84_wkt() -> str:
    from pyproj import CRS

    return CRS.from_epsg(4326).to_wkt("WKT1_ESRI")


def _frame(features: list[dict[str, Any]], fmt: str):
    libs.require_gdal()
    import geopandas as gpd
    import pandas as pd
    import shapely

    rows, lons, lats = [], [], []
    for feature in features:
        values, lon, lat = _values(feature)
        rows.append(values)
        lons.append(lon)
        lats.append(lat)
    df = pd.DataFrame(rows, columns=list(FIELD_NAMES))
    for f in FIELDS:
        if f.type == "integer" or (f.type == "boolean" and fmt == "shp"):
            # Shapefiles have no boolean: 1, 0 or empty.
            df[f.name] = df[f.name].astype("Int64")
        elif f.type == "boolean":
            df[f.name] = df[f.name].astype("boolean")
        else:
            df[f.name] = df[f.name].astype(object)
    if fmt == "shp":
        df = df.rename(columns=SHAPEFILE_NAMES)
    return gpd.GeoDataFrame(df, geometry=shapely.points(lons, lats), crs="EPSG:4326")


def _write_gdal(features: Iterable[str], path: Path, fmt: str,
                metadata: dict[str, Any] | None, batch: int = 5000) -> int:
    libs.require_gdal()
    import pyogrio

    n = 0
    for i, chunk in enumerate(_batches(features, batch)):
        if i > 0 and not chunk:
            break
        options: dict[str, Any] = {"driver": {"gpkg": "GPKG", "shp": "ESRI Shapefile"}[fmt],
                                   "geometry_type": "Point", "append": i > 0}
        if fmt == "gpkg":
            options["layer"] = "venues"
            if i == 0:
                options["dataset_options"] = {"VERSION": GPKG_VERSION}
                if metadata is not None:
                    options["layer_metadata"] = gdal_metadata(metadata)
        else:
            options["layer_options"] = {"ENCODING": "UTF-8"}
        pyogrio.write_dataframe(_frame(chunk, fmt), path, **options)
        n += len(chunk)
    return n


def gdal_metadata(metadata: dict[str, Any]) -> dict[str, str]:
    """The data dictionary as GDAL metadata items (a GeoPackage keeps them in gpkg_metadata)."""
    return {"IDENTIFIER": "voicemap venues", "DESCRIPTION": metadata["title"],
            "LICENCE": metadata["licence"], "DATUM": metadata["datum"],
            "UPDATED": metadata["updated"] or "",
            "DATA_DICTIONARY": json.dumps(metadata, ensure_ascii=False)}


def export_file(features: Iterable[str], fmt: str, directory: str | Path,
                metadata: dict[str, Any] | None = None, name: str = "voicemap-venues") -> Path:
    """One file to download: ``directory/name.<ext>``, a Shapefile as a .zip of its parts."""
    import zipfile

    directory = Path(directory)
    if fmt != "shp":
        path = directory / f"{name}{SUFFIXES[fmt]}"
        write(features, path, fmt, metadata)
        return path
    parts = directory / "parts"
    write(features, parts / f"{name}.shp", fmt, metadata)
    path = directory / f"{name}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for part in sorted(parts.iterdir()):
            zf.write(part, part.name)
    os.chmod(path, FILE_MODE)
    return path
