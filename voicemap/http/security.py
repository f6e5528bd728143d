"""The Content-Security-Policy of the app's pages.

Every HTML page allows its own origin, the tile server's images and, for the map page, the
hashes of the inline script and styles that Folium writes (``inline_hashes``). Standard
library only: the app's default header needs no Folium.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any
from urllib.parse import urlsplit


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

