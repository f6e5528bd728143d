"""HTTP blueprints: thin views over the service modules."""

from __future__ import annotations

from flask import Flask, Response


def init_app(app: Flask) -> None:
    """Security headers on every response; pages without their own CSP get the map's."""
    from .. import config, maps

    @app.after_request
    def security_headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if resp.mimetype == "text/html" and "Content-Security-Policy" not in resp.headers:
            resp.headers["Content-Security-Policy"] = maps.content_security_policy(
                config.tiles(app.config))
        return resp
