"""HTTP blueprints: thin views over the service modules."""

from __future__ import annotations

from flask import Flask, Response, request


class TrustedProxies:
    """WSGI middleware: X-Forwarded-For/-Proto/-Host/-Port count only when the peer is a
    trusted proxy (the front server), and are removed otherwise, so a client cannot forge
    its address or the host the app believes it was asked for."""

    def __init__(self, wsgi_app, trusted: list[str]) -> None:
        from werkzeug.middleware.proxy_fix import ProxyFix

        self.app = wsgi_app
        self.fixed = ProxyFix(wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)
        self.trusted = set(trusted)

    def __call__(self, environ, start_response):
        peer = environ.get("REMOTE_ADDR") or ""
        # An empty peer is a unix socket, which only processes on this host can reach.
        if peer in self.trusted or peer == "" or peer.startswith("unix:"):
            return self.fixed(environ, start_response)
        for key in [k for k in environ if k.startswith("HTTP_X_FORWARDED_")]:
            del environ[key]
        return self.app(environ, start_response)


def init_app(app: Flask) -> None:
    """Security headers on every response; pages without their own CSP get the map's."""
    from .. import config, maps
    from ..errors import BadRequest

    app.wsgi_app = TrustedProxies(app.wsgi_app, app.config["TRUSTED_PROXIES"])

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
