"""OGC API - Tiles: the venues as vector tiles, their tileset metadata and tiling scheme."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from .. import db, tiles

bp = Blueprint("tiles", __name__, url_prefix="/ogc")

METADATA_CACHE = "public, max-age=3600"


def _json(doc: dict) -> Response:
    response = jsonify(doc)
    response.headers["Cache-Control"] = METADATA_CACHE
    return response


def _tileset_url(tms: str = tiles.TMS_ID) -> str:
    return url_for("tiles.tileset", tms=tms, _external=True)


def _tms_url() -> str:
    return url_for("tiles.tile_matrix_set", tms=tiles.TMS_ID, _external=True)


@bp.get("/tileMatrixSets")
def tile_matrix_sets():
    return _json(tiles.tile_matrix_sets(_tms_url()))


@bp.get("/tileMatrixSets/<tms>")
def tile_matrix_set(tms: str):
    tiles.check_tms(tms)
    return _json(tiles.tile_matrix_set())


@bp.get("/collections/venues/tiles")
def tileset_list():
    return _json(tiles.tilesets(self_url=request.base_url, tileset_url=_tileset_url(),
                                tms_url=_tms_url()))


@bp.get("/collections/venues/tiles/<tms>")
def tileset(tms: str):
    tiles.check_tms(tms)
    base = _tileset_url(tms)
    return _json(tiles.tileset(
        self_url=base, tms_url=_tms_url(),
        # The path is /{z}/{x}/{y}: x is the tile's column and y its row.
        tile_template=base + "/{tileMatrix}/{tileCol}/{tileRow}",
        collection_url=request.url_root.rstrip("/") + "/ogc/collections/venues",
        area=current_app.config["SERVICE_AREA"]))


@bp.get("/collections/venues/tiles/<tms>/<z>/<x>/<y>")
def tile(tms: str, z: str, x: str, y: str):
    """A Mapbox Vector Tile; 204 when empty; 304 when the client's copy is current."""
    wanted = tiles.parse_tile(tms, z, x, y)
    cache = current_app.extensions.get("voicemap.cluster_tiles")
    if cache is None:
        cache = current_app.extensions.setdefault("voicemap.cluster_tiles",
                                                  tiles.ClusterCache())
    rendered = tiles.venue_tile(db.engine(), wanted, cache=cache)
    tag = tiles.etag(rendered.body)
    headers = {"ETag": f'"{tag}"', "Cache-Control": f"public, max-age={rendered.max_age}"}
    if request.if_none_match.contains_weak(tag):
        return Response(status=304, headers=headers)
    if not rendered.body:
        return Response(status=204, headers=headers)
    return Response(rendered.body, mimetype=tiles.MVT, headers=headers)
