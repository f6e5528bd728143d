"""Domain errors that carry their HTTP status, and the handlers that render them.

The classes are plain Python so that pure modules (``audio``, ``images``, ``geo``,
``exchange``) can raise them without knowing Flask; ``init_app`` teaches a Flask app to
answer them as JSON under ``/api/`` and ``/audio/``, and as a short HTML page elsewhere.
"""

from __future__ import annotations

import errno
import logging
from typing import Any

log = logging.getLogger(__name__)


class VoicemapError(Exception):
    """Base error: ``message`` is safe to show to users; ``status`` is the HTTP status."""

    status = 500
    code = "error"

    def __init__(self, message: str, *, code: str | None = None,
                 headers: dict[str, str] | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers = headers or {}
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        body.update(self.details)
        return _with_request_id(body)


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


class ServiceUnavailable(VoicemapError):
    """The database is unreachable or busy, or the media store cannot be written (503).

    Carries ``Retry-After``: the condition is expected to pass.
    """

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, **kwargs: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **kwargs)


class InsufficientStorage(VoicemapError):
    """The media store's disk is full (507): nothing was stored."""

    status = 507
    code = "insufficient_storage"


class TooManyRequests(VoicemapError):
    """Over a rate limit (429): ``retry_after`` seconds until the window passes."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)},
                         retry_after=retry_after, **kwargs)


class AudioRejected(VoicemapError):
    """An upload that is not usable audio: not audio, undecodable, too long/short, silent."""

    status = 422
    code = "audio_rejected"


class ImageRejected(VoicemapError):
    """An upload that is not a usable image: not an accepted type, undecodable, too many
    pixels (422)."""

    status = 422
    code = "image_rejected"


class ImportRejected(VoicemapError):
    """A registry file with invalid features; ``problems`` lists them (422)."""

    status = 422
    code = "invalid_features"


_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def translate(exc: BaseException) -> VoicemapError | None:
    """The user-facing error for a failure of the machinery (disk, database), or None.

    A full disk is 507; a database that is down, restarting or locked by a long writer is
    503 with ``Retry-After``. Shared by the HTTP handlers and the CLI, so both say the same.
    """
    if isinstance(exc, VoicemapError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _FULL:
        return InsufficientStorage("the media store is full: nothing was stored; tell the "
                                   "site's administrator", code="insufficient_storage")
    if type(exc).__module__.split(".")[0] in ("botocore", "boto3", "urllib3"):
        return ServiceUnavailable("the media store is unavailable; nothing was changed, try "
                                  "again shortly", code="media_unavailable", retry_after=10)
    try:
        from sqlalchemy import exc as sa
    except ImportError:  # pragma: no cover
        sa = None
    driver_error = exc.orig if sa is not None and isinstance(exc, sa.DBAPIError) else exc
    if sa is not None and isinstance(exc, sa.TimeoutError):  # no pooled connection free
        return _unavailable()
    if not _raw_driver_error(driver_error):
        return None
    text = str(driver_error).lower()
    if "locked" in text or "busy" in text:
        return ServiceUnavailable("the database is busy with a long write (an import?); "
                                  "nothing was changed, try again shortly", code="busy",
                                  retry_after=10)
    if "disk is full" in text:
        return InsufficientStorage("the database's disk is full: nothing was stored; tell the "
                                   "site's administrator", code="insufficient_storage")
    if type(driver_error).__module__.split(".")[0] in ("sqlite3", "pysqlite3"):
        # Anything else SQLite says ("no such table", a full disk aside) is a fault of
        # ours, not something that passes with time: a 500 with its traceback logged.
        return None
    return _unavailable()  # PostgreSQL down, restarting, or the connection dropped


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("the database is unavailable; try again shortly", retry_after=5)


def _raw_driver_error(exc: BaseException) -> bool:
    """An OperationalError or InterfaceError raised by psycopg or sqlite3 themselves."""
    driver = type(exc).__module__.split(".")[0] in ("psycopg", "sqlite3", "pysqlite3")
    return driver and any(c.__name__ in ("OperationalError", "InterfaceError")
                          for c in type(exc).__mro__)


def _brief(exc: BaseException) -> str:
    """An error for the log without the SQL and its parameters, which can hold a child's
    name or a guardian's (the driver's own message is enough to tell what happened)."""
    orig = getattr(exc, "orig", None)
    return f"{type(exc).__name__}: {orig if orig is not None else exc}"


def _with_request_id(body: dict[str, Any]) -> dict[str, Any]:
    """The body with the request's id added (inside a request), so a report can be matched
    with the log lines."""
    from flask import has_request_context

    if has_request_context() and "request_id" not in body:
        from .http import request_id

        body["request_id"] = request_id()
    return body


def _wants_json() -> bool:
    from flask import request

    path = request.path
    if path == "/ogc" or path.startswith("/ogc/"):  # OGC API: JSON unless a page was asked
        return request.args.get("f") != "html"
    return (path.startswith(("/api/", "/audio/", "/healthz"))
            or request.accept_mimetypes.best == "application/json")


def init_app(app) -> None:
    """Answer VoicemapError and HTTP errors as JSON under the API, as a short page elsewhere."""
    from flask import jsonify, make_response, render_template, request
    from markupsafe import escape
    from sqlalchemy.exc import DataError
    from werkzeug.exceptions import HTTPException

    from . import metrics

    def render(status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        if _wants_json():
            response = make_response(jsonify(_with_request_id(body)), status)
        else:
            try:
                page = render_template("error.html", status=status, message=body["error"])
            except Exception:  # the page needs the database or assets that are failing
                page = f"<!doctype html><title>{status}</title><p>{escape(body['error'])}</p>"
            response = make_response(page, status)
        response.headers.update(headers or {})
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(VoicemapError)
    def handle_voicemap_error(exc: VoicemapError):
        if exc.status >= 500 and exc.status not in (503, 507):
            log.exception("internal error: %s", exc.message)
        elif exc.status >= 500:
            log.warning("%s: %s (%s)", exc.status, exc.message, _brief(exc.__cause__ or exc))
        if exc.status == 507:
            metrics.count_storage_error(exc.__cause__ or exc)
        return render(exc.status, exc.to_dict(), exc.headers)

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
        if isinstance(exc, OSError):
            metrics.count_storage_error(exc)
        known = translate(exc)
        if known is not None:
            log.warning("%s: %s (%s)", known.status, known.message, _brief(exc))
            return render(known.status, known.to_dict(), known.headers)
        log.exception("unhandled error")
        return render(500, {"error": "internal server error", "code": "internal"})
