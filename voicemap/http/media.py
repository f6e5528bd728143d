"""Serving media bytes from the store: sendfile from a local directory, or streamed from an
object store in chunks, with ETag, conditional requests and HTTP Range (206) either way."""

from __future__ import annotations

from flask import Response, current_app, request, send_file

from ..errors import NotFound
from ..storage import Store


def send_media(store: Store, kind: str, sha256: str, *, mimetype: str, missing: str,
               max_age: int = 0) -> Response:
    """A response with the stored file; NotFound(``missing``) when its bytes are gone.

    The ETag is the content hash, so it is the same on every host.
    """
    path = store.local_path(kind, sha256)
    if path is not None:
        if not path.is_file():
            current_app.logger.error("media file %s is missing", path)
            raise NotFound(missing)
        response = send_file(path, mimetype=mimetype, conditional=True, etag=sha256,
                             max_age=max_age)
        response.headers["Accept-Ranges"] = "bytes"
        return response
    size = store.size(kind, sha256)
    if size is None:
        current_app.logger.error("media object %s is missing", store.describe(kind, sha256))
        raise NotFound(missing)
    response = Response(mimetype=mimetype)
    response.set_etag(sha256)
    response.cache_control.max_age = max_age
    response.headers["Accept-Ranges"] = "bytes"
    if request.if_none_match.contains(sha256):
        response.status_code = 304
        return response
    start, stop = 0, size
    ranged = request.range
    if ranged is not None and (request.if_range.etag in (None, sha256)):
        span = ranged.range_for_length(size)
        if span is None:
            response.status_code = 416
            response.headers["Content-Range"] = f"bytes */{size}"
            return response
        start, stop = span
        response.status_code = 206
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    try:
        response.response = store.read_range(kind, sha256, start, stop)
    except FileNotFoundError:  # deleted on another host since its size was seen
        raise NotFound(missing) from None
    response.content_length = stop - start
    return response
