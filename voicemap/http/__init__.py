"""HTTP blueprints: thin views over the service modules."""

from __future__ import annotations

from flask import Flask, Response, request


def init_app(app: Flask) -> None:
    """Security headers on every response; pages without their own CSP get the map's."""
    from .. import config, maps
    from ..errors import BadRequest

    @app.before_request
    def refuse_nul():
        # PostgreSQL text cannot hold NUL, SQLite would store it: refuse it at the door so
        # that both backends answer the same.
        if "\x00" in request.path or any("\x00" in k or "\x00" in v
                                         for k, v in request.args.items(multi=True)):
            raise BadRequest("the URL contains a NUL character")

    @app.after_request
    def security_headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if resp.mimetype == "text/html" and "Content-Security-Policy" not in resp.headers:
            resp.headers["Content-Security-Policy"] = maps.content_security_policy(
                config.tiles(app.config))
        return resp
