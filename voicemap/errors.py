"""Domain errors that carry their HTTP status, and the handlers that render them.

The classes are plain Python so that pure modules (``audio``, ``geo``, ``exchange``) can raise
them without knowing Flask; ``init_app`` teaches a Flask app to answer them as JSON under
``/api/`` and ``/audio/``, and as a short HTML page elsewhere.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class VoicemapError(Exception):
    """Base error: ``message`` is safe to show to users; ``status`` is the HTTP status."""

    status = 500
    code = "error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        body.update(self.details)
        return body


class BadRequest(VoicemapError):
    """Malformed or out-of-range input (400)."""

    status = 400
    code = "bad_request"


class Unauthorized(VoicemapError):
    """No valid credentials (401)."""

    status = 401
    code = "unauthorized"


class Forbidden(VoicemapError):
    """Valid credentials, but not allowed to do this (403)."""

    status = 403
    code = "forbidden"


class NotFound(VoicemapError):
    """No such thing, or not visible to the caller (404)."""

    status = 404
    code = "not_found"


class Conflict(VoicemapError):
    """The request conflicts with the current state (409)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(VoicemapError):
    """An upload over the size limit (413)."""

    status = 413
    code = "too_large"


class AudioRejected(VoicemapError):
    """An upload that is not usable audio: not audio, undecodable, too long/short, silent."""

    status = 422
    code = "audio_rejected"


class ImportRejected(VoicemapError):
    """A registry file with invalid features; ``problems`` lists them (422)."""

    status = 422
    code = "invalid_features"


def _wants_json() -> bool:
    from flask import request

    path = request.path
    return (path.startswith(("/api/", "/audio/", "/healthz"))
            or request.accept_mimetypes.best == "application/json")


def init_app(app) -> None:
    """Answer VoicemapError and HTTP errors as JSON under the API, as a short page elsewhere."""
    from flask import jsonify, make_response, render_template, request
    from sqlalchemy.exc import DataError
    from werkzeug.exceptions import HTTPException

    def render(status: int, body: dict[str, Any]):
        if _wants_json():
            return make_response(jsonify(body), status)
        page = render_template("error.html", status=status, message=body["error"])
        return make_response(page, status)

    @app.errorhandler(VoicemapError)
    def handle_voicemap_error(exc: VoicemapError):
        if exc.status >= 500:
            log.exception("internal error: %s", exc.message)
        return render(exc.status, exc.to_dict())

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        message = exc.description or exc.name
        if exc.code == 413:
            limit = app.config.get("MAX_UPLOAD_BYTES")
            code = "too_large"
            if (request.content_length or 0) <= app.config["MAX_CONTENT_LENGTH"]:
                message = "a form field is too large (text fields hold at most 500 kB)"
            else:
                message = f"the upload is larger than the limit of {limit} bytes"
        response = render(exc.code or 500, {"error": message, "code": code})
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(DataError)
    def handle_data_error(exc: DataError):
        # The database refused a value the checks let through (e.g. a NUL byte, which
        # PostgreSQL text cannot hold): the input's fault, not the server's.
        log.warning("database refused a value: %s", exc.orig)
        return render(400, {"error": "a value in the request cannot be stored or looked up "
                                     "(control characters?)", "code": "bad_value"})

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        log.exception("unhandled error")
        return render(500, {"error": "internal server error", "code": "internal"})
