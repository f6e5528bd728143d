"""Security plumbing of the web layer: headers on every response, the CSPs, /manage's CSRF.

- Flask-Talisman writes the headers that are the same for every response:
  ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: SAMEORIGIN``, the site's
  ``Referrer-Policy``, a ``Permissions-Policy``, and ``Strict-Transport-Security`` on
  requests that came over TLS when ``PUBLIC_URL`` is https (plain-HTTP local runs get none;
  Talisman's redirect to https stays off: nginx does it in production).
- The Content-Security-Policy stays hand-written here and is set by each page: the map
  page's carries hashes of the inline script and styles that Folium writes
  (``inline_hashes``), computed once per rendered page and cached with it, which Talisman's
  fixed per-view policies cannot express (its nonces would change the cached page on every
  request). A page that sets none gets ``content_security_policy(tiles)`` (``finish``).
  Talisman is told to leave the header alone.
- CSRF: Flask-WTF's ``CSRFProtect`` (``csrf``), checked only where ``csrf.protect()`` is
  called: the /manage blueprint, whose forms ride on a session cookie. The JSON API
  authenticates with bearer tokens and the public forms (children's works, the play beacon)
  carry no session, so no check applies to them.

``finish`` is registered before Talisman, so it runs after it (Flask runs ``after_request``
functions last registered first): a blueprint's stricter header (``own_header``: /manage's
``Referrer-Policy: same-origin`` and ``X-Frame-Options: DENY``) wins over the site's. The
CSP helpers need no Folium: the app's default header is written without it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()  # its settings are read from the current app: one serves every app

SITE_REFERRER_POLICY = "strict-origin-when-cross-origin"  # tile servers want the origin
HSTS_MAX_AGE = 365 * 24 * 3600


def init_app(app: Flask) -> None:
    """CSRF protection (checked where ``csrf.protect()`` is called), the default CSP and a
    blueprint's own headers (``finish``), then Talisman's headers."""
    from .. import config

    # The names the /manage templates and scripts already use; a token lives as long as
    # the session (PERMANENT_SESSION_LIFETIME), as before, rather than Flask-WTF's hour.
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_FIELD_NAME", "csrf")
    app.config.setdefault("WTF_CSRF_HEADERS", ["X-CSRF-Token"])
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)

    @app.after_request
    def finish(resp: Response) -> Response:
        if resp.mimetype == "text/html" and "Content-Security-Policy" not in resp.headers:
            resp.headers["Content-Security-Policy"] = content_security_policy(
                config.tiles(app.config))
        for name, value in g.get("own_headers", {}).items():
            resp.headers[name] = value
        return resp

    https = (app.config.get("PUBLIC_URL") or "").lower().startswith("https://")
    # One Talisman per app: it keeps its options (and the app) on itself.
    app.extensions["voicemap.talisman"] = Talisman(
        app,
        force_https=False,  # plain-HTTP local runs keep working; nginx redirects in production
        strict_transport_security=https,  # and then only on requests that came over TLS
        strict_transport_security_max_age=HSTS_MAX_AGE,
        strict_transport_security_include_subdomains=False,  # the site's own host only
        content_security_policy=False,  # hand-written per page (see above)
        referrer_policy=SITE_REFERRER_POLICY,
        frame_options="SAMEORIGIN",
        # Talisman's default, as a string: a dict is re-serialised on every response.
        permissions_policy="browsing-topics=()",
        # The session cookie stays as configured (SESSION_COOKIE_SECURE, default off, so
        # that plain HTTP works): Talisman would otherwise force Secure on every request.
        session_cookie_secure=app.config.get("SESSION_COOKIE_SECURE", False),
        session_cookie_http_only=app.config.get("SESSION_COOKIE_HTTPONLY", True),
        session_cookie_samesite=app.config.get("SESSION_COOKIE_SAMESITE", "Lax"),
    )


def own_header(name: str, value: str) -> None:
    """Send ``value`` as this response's ``name`` header in place of the site's one that
    Talisman writes (a blueprint's stricter Referrer-Policy or X-Frame-Options)."""
    g.setdefault("own_headers", {})[name] = value


def tile_origins(tiles: dict[str, Any]) -> list[str]:
    """The origins the tile layer loads images from, with ``{s}`` expanded."""
    parts = urlsplit(tiles["url"])
    hosts = [parts.netloc]
    if "{s}" in parts.netloc:
        subdomains = tiles.get("subdomains") or "abc"
        hosts = [parts.netloc.replace("{s}", s) for s in subdomains]
    return [f"{parts.scheme}://{h}" for h in hosts]


def content_security_policy(tiles: dict[str, Any], scripts: tuple[str, ...] = (),
                            styles: tuple[str, ...] = ()) -> str:
    """A CSP allowing the app's own origin, the tile server's images and hashed inline code."""
    def src(*extra: str) -> str:
        return " ".join(("'self'", *extra))

    return "; ".join((
        f"default-src {src()}",
        f"script-src {src(*scripts)}",
        f"style-src {src(*styles)}",
        # data: is Leaflet's blank image for tiles it stops loading
        f"img-src {src('data:', *tile_origins(tiles))}",
        "connect-src 'self'", "media-src 'self'", "font-src 'self'",
        # the offline service worker (/sw.js) and the web app manifest
        "worker-src 'self'", "manifest-src 'self'",
        "object-src 'none'", "base-uri 'none'", "form-action 'self'",
        "frame-ancestors 'self'",
    ))


_INLINE = re.compile(r"<(script|style)\b([^>]*)>(.*?)</\1>", re.S | re.I)


def inline_hashes(html: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """CSP source expressions for every inline script and style block of ``html``."""
    scripts, styles = [], []
    for tag, attrs, body in _INLINE.findall(html):
        if tag.lower() == "script" and ("src=" in attrs or "application/json" in attrs):
            continue
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        (scripts if tag.lower() == "script" else styles).append(f"'sha256-{digest}'")
    return tuple(dict.fromkeys(scripts)), tuple(dict.fromkeys(styles))

