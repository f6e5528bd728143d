"""The OpenAPI 3.0 definition of /ogc: self-contained (no remote ``$ref``), with examples.

Written from the collection registry, so each collection's items path lists its queryables
as parameters (GDAL reads them from here to send ``-where`` to the server). Every parameter
carries an example that answers as documented (tests/test_ogc.py runs them all).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from .. import db, ogc, tiles

ERROR = {"$ref": "#/components/responses/Error"}
NOT_FOUND = {"$ref": "#/components/responses/NotFound"}
EXAMPLE_TEXT = {"category": "museum", "district": "Dongcheng"}


def _param(name: str, where: str, description: str, schema: dict[str, Any], example: Any,
           required: bool = False, style: str | None = None) -> dict[str, Any]:
    out = {"name": name, "in": where, "description": description, "required": required,
           "schema": schema, "example": example}
    if style:
        out.update(style=style, explode=False)
    return out


def _json(schema: dict[str, Any], *types: str) -> dict[str, Any]:
    return {t: {"schema": schema} for t in types}


def _ok(description: str, schema: dict[str, Any], *types: str) -> dict[str, Any]:
    return {"description": description,
            "content": {**_json(schema, *types), "text/html": {"schema": {"type": "string"}}}}


def _first_id(collection: ogc.Collection) -> str | None:
    """A feature id that exists, for the examples (the first in the paging order)."""
    c = collection
    public = f"WHERE ({c.public})" if c.public != "true" else ""
    with db.engine().connect() as conn:
        row = conn.execute(text(f"SELECT v.{c.key} FROM {c.table} v {public} "
                                f"ORDER BY v.{c.key} LIMIT 1")).first()
    return row[0] if row else None


def _property_example(prop: ogc.Property) -> Any:
    if prop.enum:
        return prop.enum[0] if prop.name != "category" else "museum"
    return {"integer": 6, "real": 1.5, "boolean": True}.get(prop.type,
                                                           EXAMPLE_TEXT.get(prop.name, "x"))


FILTER = _param("filter", "query", "a CQL2 filter over the queryables (basic CQL2 and the "
                "S_* spatial functions)", {"type": "string"}, "")
SORTBY = _param("sortby", "query", "comma-separated queryables, - before a name for "
                "descending; the id always breaks ties", {"type": "string"}, "")


def _filter_example(c: ogc.Collection) -> str:
    """A filter over this collection's first enumerated queryable and a box."""
    box = "S_INTERSECTS(geometry, BBOX(116.3,39.8,116.5,40.0))"
    prop = next((p for p in c.properties if p.enum), None)
    return f"{prop.name} = '{_property_example(prop)}' AND {box}" if prop else box


def _sortby_example(c: ogc.Collection) -> str:
    """A sort by this collection's first enumerated queryable, then an integer descending."""
    first = next((p.name for p in c.properties if p.enum), None)
    number = next((p.name for p in c.properties if p.type == "integer" and p.name != c.key),
                  None)
    return ",".join(n for n in (first, number and f"-{number}") if n) or c.key


def _schema_type(prop: ogc.Property) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": {"text": "string", "real": "number"}.get(prop.type,
                                                                               prop.type)}
    if prop.enum:
        schema["enum"] = list(prop.enum)
    return schema


def _collection_paths(c: ogc.Collection, config: dict[str, Any]) -> dict[str, Any]:
    box = c.extent(config)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    small = f"{cx - 0.1:.2f},{cy - 0.1:.2f},{cx + 0.1:.2f},{cy + 0.1:.2f}"
    first = _first_id(c)
    props = {"type": "object", "properties": {p.name: {**_schema_type(p), "nullable": True,
                                                         "description": p.description}
                                               for p in c.properties}}
    feature = {"type": "object", "required": ["type", "id", "geometry", "properties"],
               "properties": {"type": {"type": "string", "enum": ["Feature"]},
                              "id": {"type": "integer" if c.key_type == "integer"
                                     else "string"},
                              "geometry": {"$ref": "#/components/schemas/Geometry"},
                              "properties": props,
                              "links": {"type": "array",
                                        "items": {"$ref": "#/components/schemas/Link"}}}}
    collection = {"type": "object", "required": ["type", "features"],
                  "properties": {"type": {"type": "string", "enum": ["FeatureCollection"]},
                                 "features": {"type": "array", "items": feature},
                                 "numberMatched": {"type": "integer", "minimum": 0},
                                 "numberReturned": {"type": "integer", "minimum": 0},
                                 "timeStamp": {"type": "string", "format": "date-time"},
                                 "links": {"type": "array",
                                           "items": {"$ref": "#/components/schemas/Link"}}}}
    queryable_params = [
        _param(p.name, "query", f"features whose {p.name} equals this ({p.description}); "
               "repeat for any of several values", _schema_type(p), _property_example(p))
        for p in c.properties if p.name != c.key]
    ref = lambda name: {"$ref": f"#/components/parameters/{name}"}  # noqa: E731
    base = f"/collections/{c.id}"
    paths = {
        base: {"get": {
            "tags": [c.id], "summary": f"describe {c.id}", "operationId": f"describe-{c.id}",
            "parameters": [ref("f")],
            "responses": {"200": _ok("the collection", {"type": "object"}, "application/json"),
                          "400": ERROR}}},
        f"{base}/queryables": {"get": {
            "tags": [c.id], "summary": f"the queryables of {c.id}",
            "operationId": f"queryables-{c.id}", "parameters": [ref("f")],
            "responses": {"200": _ok("a JSON Schema of the queryables", {"type": "object"},
                                     "application/schema+json"), "400": ERROR}}},
        f"{base}/items": {"get": {
            "tags": [c.id], "summary": f"features of {c.id}, a page at a time",
            "operationId": f"items-{c.id}",
            "parameters": [ref("f"), ref("limit"),
                           _param(
                               "bbox", "query", "only features in this box (lower left "
                               "corner, upper right corner; CRS84 unless bbox-crs says)",
                               {"type": "array", "minItems": 4, "maxItems": 6,
                                "items": {"type": "number"}},
                               [float(v) for v in small.split(",")], style="form"),
                           ref("bbox-crs"), ref("crs"),
                           {**FILTER, "example": _filter_example(c)}, ref("filter-lang"),
                           ref("filter-crs"), {**SORTBY, "example": _sortby_example(c)},
                           ref("cursor"),
                           *queryable_params],
            "responses": {"200": _ok("a page of features", collection,
                                     "application/geo+json"),
                          "400": ERROR, "404": NOT_FOUND}}},
        f"{base}/items/{{featureId}}": {"get": {
            "tags": [c.id], "summary": f"one feature of {c.id}",
            "operationId": f"item-{c.id}",
            "parameters": [_param("featureId", "path", "the feature's id",
                                  {"type": "string"}, first or "none", required=True),
                           ref("f"), ref("crs")],
            "responses": {"200": _ok("the feature", feature, "application/geo+json"),
                          "400": ERROR, "404": NOT_FOUND}}},
    }
    return paths


def _tile_paths() -> dict[str, Any]:
    """OGC API - Tiles: the venues as Mapbox Vector Tiles, with their metadata."""
    def op(summary: str, op_id: str, params: list[dict[str, Any]],
           ok: dict[str, Any]) -> dict[str, Any]:
        return {"get": {"tags": ["tiles"], "summary": summary, "operationId": op_id,
                        "parameters": params, "responses": {"200": ok, "400": ERROR,
                                                            "404": NOT_FOUND}}}

    meta = {"description": "the document", "content": _json({"type": "object"},
                                                            "application/json")}
    tms = _param("tileMatrixSetId", "path", "the tiling scheme (only WebMercatorQuad)",
                 {"type": "string", "enum": [tiles.TMS_ID]}, tiles.TMS_ID, required=True)
    # A tile over all of Beijing at zoom 4: it holds every venue (as clusters).
    cell = [_param("tileMatrix", "path", "the zoom level (0-22)",
                   {"type": "integer", "minimum": 0, "maximum": 22}, 4, required=True),
            _param("tileCol", "path", "the tile's column (x), from the west",
                   {"type": "integer", "minimum": 0}, 13, required=True),
            _param("tileRow", "path", "the tile's row (y), from the north",
                   {"type": "integer", "minimum": 0}, 6, required=True)]
    tile_ok = {"description": "the tile: one layer, venues (204 when it holds none)",
               "content": {tiles.MVT: {"schema": {"type": "string", "format": "binary"}}}}
    base = "/collections/venues/tiles"
    return {
        "/tileMatrixSets": op("the tiling schemes", "tileMatrixSets", [], meta),
        "/tileMatrixSets/{tileMatrixSetId}": op("a tiling scheme", "tileMatrixSet", [tms],
                                                meta),
        base: op("the venues' tilesets", "venueTilesets", [], meta),
        base + "/{tileMatrixSetId}": op("the venues' tileset", "venueTileset", [tms], meta),
        # The server's path is /{z}/{x}/{y}: column before row, as web maps ask.
        base + "/{tileMatrixSetId}/{tileMatrix}/{tileCol}/{tileRow}": op(
            "a vector tile of the venues", "venueTile", [tms, *cell], tile_ok),
    }


def document(base_url: str, config: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.0 document for the service at ``base_url`` (…/ogc)."""
    simple = {"200": _ok("the document", {"type": "object"}, "application/json"),
              "400": ERROR}
    paths: dict[str, Any] = {
        "/": {"get": {"tags": ["service"], "summary": "landing page", "operationId": "landing",
                      "parameters": [{"$ref": "#/components/parameters/f"}],
                      "responses": simple}},
        "/conformance": {"get": {"tags": ["service"], "summary": "conformance classes",
                                 "operationId": "conformance",
                                 "parameters": [{"$ref": "#/components/parameters/f"}],
                                 "responses": simple}},
        "/api": {"get": {"tags": ["service"], "summary": "this API definition",
                         "operationId": "api",
                         "parameters": [{"$ref": "#/components/parameters/f"}],
                         "responses": {"200": _ok("the OpenAPI document", {"type": "object"},
                                                  "application/vnd.oai.openapi+json;"
                                                  "version=3.0"), "400": ERROR}}},
        "/collections": {"get": {"tags": ["service"], "summary": "the collections",
                                 "operationId": "collections",
                                 "parameters": [{"$ref": "#/components/parameters/f"}],
                                 "responses": simple}},
    }
    for c in ogc.COLLECTIONS.values():
        paths.update(_collection_paths(c, config))
    paths.update(_tile_paths())
    crs = {"type": "string", "format": "uri", "enum": list(ogc.CRS_LIST),
           "default": ogc.CRS84}
    parameters = {
        "f": _param("f", "query", "the representation: json (GeoJSON for features) or html; "
                    "without it, the Accept header decides", {"type": "string",
                                                              "enum": ["json", "html"]},
                    "json"),
        "limit": _param("limit", "query", "features per page (larger asks get the maximum, "
                        f"{config['OGC_MAX_LIMIT']})",
                        {"type": "integer", "minimum": 1, "default": ogc.DEFAULT_LIMIT,
                         "maximum": config["OGC_MAX_LIMIT"]}, 100),
        "bbox-crs": _param("bbox-crs", "query", "the CRS of bbox (EPSG:4326 is latitude "
                           "first)", crs, ogc.CRS84),
        "crs": _param("crs", "query", "the CRS of the answer's coordinates (EPSG:4326 is "
                      "latitude first, EPSG:3857 metres); the Content-Crs header names it",
                      crs, ogc.EPSG4326),
        "filter": {**FILTER, "example": "category = 'museum' AND S_INTERSECTS(geometry, "
                                        "BBOX(116.3,39.8,116.5,40.0))"},
        "filter-lang": _param("filter-lang", "query", "the filter's encoding",
                              {"type": "string", "enum": list(ogc.FILTER_LANGS),
                               "default": "cql2-text"}, "cql2-text"),
        "filter-crs": _param("filter-crs", "query", "the CRS of the filter's geometries",
                             crs, ogc.CRS84),
        "sortby": {**SORTBY, "example": "category,-min_age"},
        "cursor": _param("cursor", "query", "where a page starts: given by the next and prev "
                         "links, opaque", {"type": "string"}, ""),
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "voicemap: OGC API - Features and Tiles", "version": "1.0.0",
                 "description": "Beijing's child-friendly venues, public children's works "
                                "and activities, WGS-84, for GIS tools.",
                 "license": {"name": "see the data dictionary of /api/venues"}},
        "servers": [{"url": base_url}],
        "tags": [{"name": "service"}, *({"name": c} for c in ogc.COLLECTIONS),
                 {"name": "tiles"}],
        "paths": paths,
        "components": {
            "parameters": parameters,
            "schemas": {
                "Link": {"type": "object", "required": ["href", "rel"],
                         "properties": {k: {"type": "string"}
                                        for k in ("href", "rel", "type", "title")}},
                "Geometry": {"type": "object", "required": ["type", "coordinates"],
                             "properties": {"type": {"type": "string"},
                                            "coordinates": {"type": "array",
                                                            "items": {}}}},
                "Error": {"type": "object", "required": ["error", "code"],
                          "properties": {"error": {"type": "string"},
                                         "code": {"type": "string"},
                                         "param": {"type": "string"},
                                         "request_id": {"type": "string"}}},
            },
            "responses": {
                "Error": {"description": "bad input: the body names the parameter",
                          "content": _json({"$ref": "#/components/schemas/Error"},
                                           "application/json")},
                "NotFound": {"description": "no such collection or feature",
                             "content": _json({"$ref": "#/components/schemas/Error"},
                                              "application/json")},
            },
        },
    }
