"""What the offline service worker needs from the server (both backends): /sw.js at the
root with a scope over the venue pages and no HTTP caching, the manifest, the venue page's
button and a CSP that lets the worker run."""

from __future__ import annotations

import re

from helpers import feature, load
from test_pages import add_clip


def test_service_worker_is_served_from_the_root_uncached(client):
    r = client.get("/sw.js")
    assert r.status_code == 200
    assert r.mimetype == "text/javascript"
    assert r.headers["Service-Worker-Allowed"] == "/"
    assert "no-cache" in r.headers["Cache-Control"] and "no-store" in r.headers["Cache-Control"]
    body = r.get_data(as_text=True)
    assert "vm-offline-" in body and "/api/clips/status" in body


def test_manifest_follows_the_language(client):
    r = client.get("/manifest.webmanifest?lang=en")
    assert r.status_code == 200 and r.mimetype == "application/manifest+json"
    m = r.get_json(force=True)
    assert m["scope"] == "/" and m["start_url"] == "/?lang=en" and m["lang"] == "en"
    assert m["icons"][0]["src"].startswith("/assets/")
    assert client.get("/manifest.webmanifest?lang=zh").get_json(force=True)["name"] == "童声地图"


def test_venue_page_carries_the_offline_button_and_allows_the_worker(app, client):
    load(app, [feature("museum-a", 116.34, 39.90)])
    add_clip(app, "museum-a", "c1")
    r = client.get("/venues/museum-a?lang=en")
    html = r.get_data(as_text=True)
    assert 'id="vm-offline" hidden' in html  # shown by the script where workers exist
    assert "Save for offline" in html and "/offline.js" in html
    assert '"venue": "museum-a"' in html and '"sw": "/sw.js"' in html
    csp = r.headers["Content-Security-Policy"]
    assert "worker-src 'self'" in csp and "manifest-src 'self'" in csp
    # The same page in Chinese: the strings follow the language.
    assert "保存离线收听" in client.get("/venues/museum-a?lang=zh").get_data(as_text=True)


def test_the_map_and_venue_page_carry_the_play_beacon(app, client):
    load(app, [feature("museum-a", 116.34, 39.90)])
    assert "/vm/plays.js" in client.get("/?lang=en").get_data(as_text=True)
    assert "/vm/plays.js" in client.get("/venues/museum-a").get_data(as_text=True)
    beacon = client.get(next(u for u in re.findall(
        r'src="([^"]+/vm/plays\.js)"', client.get("/?lang=en").get_data(as_text=True))))
    assert beacon.status_code == 200 and b"/played" in beacon.get_data()
