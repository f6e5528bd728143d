"""HTTP blueprints: thin views over the service modules."""

from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, Response, g, has_request_context, request

# An X-Request-Id the front server sends (nginx's $request_id) is kept only if it is this
# plain: it goes into logs and headers.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
LOG_FORMAT = "[%(asctime)s] %(levelname)s in %(module)s [%(request_id)s]: %(message)s"


class TrustedProxies:
    """WSGI middleware: X-Forwarded-For/-Proto/-Host/-Port count only when the peer is a
    trusted proxy (the front server), and are removed otherwise, so a client cannot forge
    its address, the host the app believes it was asked for, or its request id."""

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
        for key in [k for k in environ
                    if k.startswith("HTTP_X_FORWARDED_") or k == "HTTP_X_REQUEST_ID"]:
            del environ[key]
        return self.app(environ, start_response)


def request_id() -> str:
    """This request's id: the trusted front server's ``X-Request-Id`` if it is a safe token
    (TrustedProxies drops it from anyone else), else a new uuid4 hex."""
    if "request_id" not in g:
        sent = request.headers.get("X-Request-Id", "")
        g.request_id = sent if SAFE_REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
    return g.request_id


def _log_request_ids() -> None:
    """Give every log record a ``request_id`` field ("-" outside a request), so that any
    formatter can show it; Flask's default handler does."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_request_id", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = (g.get("request_id", "-") if has_request_context() else "-")
        return record

    factory.adds_request_id = True
    logging.setLogRecordFactory(factory)


def init_app(app: Flask) -> None:
    """Request ids; security headers on every response and CSRF protection (``security``)."""
    from flask.logging import default_handler

    from ..errors import BadRequest
    from . import security

    app.wsgi_app = TrustedProxies(app.wsgi_app, app.config["TRUSTED_PROXIES"])
    _log_request_ids()
    if default_handler in app.logger.handlers:
        default_handler.setFormatter(logging.Formatter(LOG_FORMAT))

    @app.before_request
    def assign_request_id():
        request_id()  # early, so that log lines written while handling the request carry it

    @app.before_request
    def refuse_nul():
        # PostgreSQL text cannot hold NUL, SQLite would store it: refuse it at the door so
        # that both backends answer the same.
        if "\x00" in request.path or any("\x00" in k or "\x00" in v
                                         for k, v in request.args.items(multi=True)):
            raise BadRequest("the URL contains a NUL character")

    @app.after_request
    def request_id_header(resp: Response) -> Response:
        resp.headers["X-Request-Id"] = request_id()
        return resp

    security.init_app(app)  # CSRF, the CSPs and Talisman's security headers
