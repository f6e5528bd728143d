#!/usr/bin/env python
"""Map page benchmark: what a browser downloads, how fast the server and the page answer.

    .venv/bin/python bench/bench_map.py [--sizes 100,10000,100000] [--seconds 5]
        [--front both|nginx|direct]

For each size N it loads N synthetic venues spread over central Beijing into a SpatiaLite
file (one transaction, R*Tree built afterwards), serves it as scripts/run does (nginx in
front of gunicorn with 2 sync workers, scripts/serve) on loopback, and prints for the real
map page (``/``) and, beside it, a naive Folium page with one ``folium.Marker`` (and popup)
per venue, measured in the same run:

  bytes   what headless Chromium fetched from the app: page (HTML + scripts + styles +
          images) and venue data, raw (decoded) and as transferred (gzip where served so)
  server  ``/`` time over loopback: the first request (Folium render) and the median of
          200 later ones; for the naive page, the Folium render itself (it has no cache)
  tti     time from navigation start to the map being interactive with its venues drawn
          (our page: first data load applied; naive page: load event, markers built
          inline) in Debian's Chromium at 1280x800, opening on Tiananmen at zoom 11
  zoom    ours only: zooming in to 14 on a busy spot until the venues in view are drawn
  rps     requests/s for ``/`` from wrk (1 thread, 8 connections); for the naive page,
          2 workers / render time (it renders per request)
  front   with --front both (the default): ``/`` requests/s as served and from bare
          gunicorn (how scripts/run served before nginx), alternating A B B A in one run
  scripts at the first size: first visits with the map's scripts as one bundle (as served)
          and as separate ES modules (VOICEMAP_MAP_BUNDLE=false), alternating, --rounds
          each, over loopback and over DevTools' "Slow 4G" (150 ms latency, 1.44 Mbit/s
          down): requests to the app, bytes, and the median tti

At sizes where the naive page would take over ~2 minutes to render (100,000), its figures
are estimated from the 10,000 run by linear scaling and marked "est.". Tile requests are
answered with a blank tile inside the browser; nothing leaves the machine. Output also
goes to bench/output/map-<date>.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import http.server
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from functools import partial
from pathlib import Path

import numpy as np
from common import (  # bench/ is on sys.path when run as a script
    LINES,
    Server,
    bulk_load_spatialite,
    say,
)

from voicemap import categories, db, models
from voicemap.backends import spatialite

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT_DIR = ROOT / "bench" / "output"
AREA = (116.10, 39.75, 116.70, 40.10)  # inside Beijing's 6th ring road
CHROMIUM = "/usr/bin/chromium"
# DevTools' "Slow 4G" preset (Chromium's network throttling: latency in ms, bytes/s).
SLOW_4G = {"offline": False, "latency": 150, "downloadThroughput": 1.6e6 * 0.9 / 8,
           "uploadThroughput": 750e3 * 0.9 / 8}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NAIVE_LIMIT_S = 120


def kb(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


# --- data ---------------------------------------------------------------------------------


def load(n: int, path: Path) -> str:
    """N venues with realistic-length bilingual names, straight into SpatiaLite."""
    rng = np.random.default_rng(20250101 + n)
    lon = np.round(rng.uniform(AREA[0], AREA[2], n), 7)
    lat = np.round(rng.uniform(AREA[1], AREA[3], n), 7)
    cat = rng.integers(0, len(categories.IDS), n)
    url = f"sqlite:///{path}"
    engine = db.make_engine(url)
    with engine.begin() as conn:
        spatialite.setup(conn)
    models.Base.metadata.create_all(engine)
    cols = ("id", "name_zh", "name_en", "category", "address_zh", "address_en",
            "opening_hours", "updated_at")
    now = dt.datetime.now(dt.UTC).isoformat()
    bulk_load_spatialite(
        engine, cols,
        ((f"bench-{i:07d}", f"北京儿童友好场馆第{i}号", f"Child-friendly venue no. {i}",
          categories.IDS[cat[i]], f"北京市东城区某路{i % 997}号",
          f"No. {i % 997} Some Road, Dongcheng", "09:00-17:00", now,
          float(lon[i]), float(lat[i])) for i in range(n)))
    return url


# --- servers ------------------------------------------------------------------------------


def timed_get(url: str) -> float:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        r.read()
    return time.perf_counter() - t


def wrk_rps(url: str, seconds: int) -> float:
    if shutil.which("wrk") is None:  # a plain client loop instead
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            timed_get(url)
            n += 1
        return n / (time.perf_counter() - t0)
    out = subprocess.run(["wrk", "-t1", "-c8", f"-d{seconds}s", url], capture_output=True,
                         text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("Requests/sec"))
    return float(line.split()[1])


def static_server(directory: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


# --- the browser --------------------------------------------------------------------------


def blank_tile() -> bytes:
    import struct
    import zlib

    raw = b"".join(b"\x00" + b"\xe9\xe6\xdf" * 256 for _ in range(256))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Browser:
    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self.pw = sync_playwright().start()
        self.browser = self.pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        self.tile = blank_tile()

    def visit(self, url: str, ready: str, zoom_in: bool = False,
              timeout_ms: int = 600_000, slow: bool = False) -> dict:
        """Open url in a fresh context; sizes of what came from loopback, and timings.
        ``slow``: over DevTools' "Slow 4G" network conditions."""
        ctx = self.browser.new_context(viewport={"width": 1280, "height": 800})
        got: list = []

        def route(r):
            if r.request.url.startswith("http://127.0.0.1:"):
                return r.continue_()
            return r.fulfill(body=self.tile, content_type="image/png")  # tiles

        ctx.route("**/*", route)
        page = ctx.new_page()
        page.set_default_timeout(timeout_ms)
        if slow:
            ctx.new_cdp_session(page).send("Network.emulateNetworkConditions", SLOW_4G)
        page.on("requestfinished", lambda req: got.append(req))
        page.goto(url, timeout=timeout_ms)
        page.wait_for_function(ready, timeout=timeout_ms)
        tti = page.evaluate("window.voicemap && voicemap.readyAt ? voicemap.readyAt : "
                            "performance.getEntriesByType('navigation')[0].loadEventEnd")
        out = {"tti": tti, "zoom": None, "mode": page.evaluate(
            "window.voicemap && voicemap.state ? voicemap.state.mode : ''")}
        if zoom_in:
            loads = page.evaluate("voicemap.state.loads")
            t = time.perf_counter()
            page.evaluate("voicemap.state.map.setView([39.93, 116.40], 14)")
            page.wait_for_function(f"() => voicemap.state.loads > {loads} && "
                                   "voicemap.state.loading === 0")
            out["zoom"] = (time.perf_counter() - t) * 1000
            out["zoom_mode"] = page.evaluate("voicemap.state.mode")
        sizes = {"page": [0, 0], "data": [0, 0]}
        out["requests"] = 0
        for req in got:
            if not req.url.startswith("http://127.0.0.1:"):
                continue
            out["requests"] += 1
            resp = req.response()
            if resp is None:
                continue
            kind = "data" if "/api/" in req.url else "page"
            with urllib.request.urlopen(req.url, timeout=600) as r:  # no gzip asked: raw
                sizes[kind][0] += len(r.read())
            sizes[kind][1] += req.sizes()["responseBodySize"]
        out["sizes"] = sizes
        ctx.close()
        return out

    def close(self) -> None:
        self.browser.close()
        self.pw.stop()


# --- the naive page -------------------------------------------------------------------------


def naive_page(url: str, asset_base: str, asset_version: str) -> str:
    """One folium.Marker with a popup per venue, Folium's own way (scripts from our app)."""
    import folium
    from folium.plugins import MarkerCluster
    from sqlalchemy import text

    engine = db.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name_zh, name_en, category, ST_X(geom), ST_Y(geom) "
                                 "FROM venues")).all()
    engine.dispose()
    m = folium.Map(location=[39.9087, 116.3975], zoom_start=11)
    # No CDN here: Leaflet and markercluster from the app; Folium's jQuery, Bootstrap and
    # Font-Awesome left out (that only flatters the naive page's byte count).
    m.default_js = [("leaflet", f"{asset_base}/assets/{asset_version}/leaflet/leaflet.js")]
    m.default_css = [("leaflet_css", f"{asset_base}/assets/{asset_version}/leaflet/leaflet.css")]
    cluster = MarkerCluster()
    cluster.default_js = [("markerclusterjs", f"{asset_base}/assets/{asset_version}/"
                                              "markercluster/leaflet.markercluster.js")]
    cluster.default_css = [("markerclustercss", f"{asset_base}/assets/{asset_version}/"
                                                "markercluster/MarkerCluster.css")]
    cluster.add_to(m)
    for zh, en, cat, x, y in rows:
        folium.Marker([y, x], tooltip=zh,
                      popup=folium.Popup(f"<b>{zh}</b><br>{en}<br>{cat}")).add_to(cluster)
    return m.get_root().render()


# --- one size ---------------------------------------------------------------------------------


def compare_fronts(server: Server, direct: Server, n: int, seconds: int) -> None:
    """``/`` requests/s as served (nginx in front) and from bare gunicorn, A B B A."""
    got: dict[str, list[float]] = {"nginx": [], "direct": []}
    half = max(1, seconds // 2)
    for front in ("direct", "nginx", "nginx", "direct"):
        s = server if front == "nginx" else direct
        got[front].append(wrk_rps(s.base + "/?lang=zh", half))
    a, b = statistics.mean(got["nginx"]), statistics.mean(got["direct"])
    say(f"n={n:<7} front: / rps {a:.0f} {server.kind}, {b:.0f} {direct.kind} "
        f"(same run, A B B A): {a / b:.2f}x "
        f"(target >= 0.9x: {'met' if a >= 0.9 * b else 'NOT met'})")


def compare_scripts(url: str, tmp: Path, n: int, browser: Browser, front: str,
                    rounds: int) -> None:
    """First visits with the map's scripts bundled and as separate modules, alternating."""
    direct = front == "direct"
    servers = {"bundle": Server(url, tmp, direct=direct),
               "modules": Server(url, tmp, direct=direct, env={"VOICEMAP_MAP_BUNDLE": "false"})}
    ready = "() => document.documentElement.dataset.vmReady"
    got: dict[tuple[str, bool], list[dict]] = {}
    try:
        for s in servers.values():
            timed_get(s.base + "/?lang=zh")
            timed_get(s.base + "/?lang=zh")
        for slow in (False, True):
            for i in range(rounds):
                for kind in (("bundle", "modules") if i % 2 == 0 else ("modules", "bundle")):
                    got.setdefault((kind, slow), []).append(
                        browser.visit(servers[kind].base + "/?lang=zh", ready, slow=slow))
    finally:
        for s in servers.values():
            s.stop()
    for slow in (False, True):
        medians = {}
        for kind in ("modules", "bundle"):
            visits = got[(kind, slow)]
            ttis = sorted(v["tti"] for v in visits)
            medians[kind] = statistics.median(ttis)
            p = visits[0]["sizes"]["page"]
            say(f"n={n:<7} scripts {kind:<7} {'slow 4G ' if slow else 'loopback'}: "
                f"{visits[0]['requests']} requests to the app, page {kb(p[0])} raw, "
                f"{kb(p[1])} transferred; first-visit tti median {medians[kind]:.0f} ms "
                f"(min {ttis[0]:.0f}, max {ttis[-1]:.0f}; {len(ttis)} visits)")
        say(f"n={n:<7} scripts bundle/modules tti {'slow 4G ' if slow else 'loopback'}: "
            f"{medians['bundle'] / medians['modules']:.2f}x (same run, alternating)")


def run_size(n: int, seconds: int, browser: Browser, naive_cache: dict,
             front: str = "nginx", script_rounds: int = 0) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f"vm-bench-map-{n}-"))
    t = time.perf_counter()
    url = load(n, tmp / "voicemap.sqlite")
    say(f"n={n:<7} loaded in {time.perf_counter() - t:.1f} s")
    if script_rounds:
        compare_scripts(url, tmp, n, browser, front, script_rounds)
    server = Server(url, tmp, direct=front == "direct")
    try:
        if front == "both":
            direct = Server(url, tmp, direct=True)
            try:
                timed_get(direct.base + "/?lang=zh")
                timed_get(direct.base + "/?lang=zh")
                timed_get(server.base + "/?lang=zh")
                timed_get(server.base + "/?lang=zh")
                compare_fronts(server, direct, n, seconds)
            finally:
                direct.stop()
        home = server.base + "/?lang=zh"
        first = max(timed_get(home), timed_get(home))  # each worker renders once
        times = sorted(timed_get(home) for _ in range(200))
        html = urllib.request.urlopen(home).read().decode()
        version = html.split("/assets/")[1].split("/")[0]
        ours = browser.visit(home, "() => document.documentElement.dataset.vmReady",
                             zoom_in=True)
        rps = wrk_rps(home, seconds)
        p, d = ours["sizes"]["page"], ours["sizes"]["data"]
        say(f"n={n:<7} ours : bytes page {kb(p[0])} (sent {kb(p[1])}) + data {kb(d[0])} "
            f"(sent {kb(d[1])}) = {kb(p[0] + d[0])} raw, {kb(p[1] + d[1])} transferred "
            f"[opens in {ours['mode']} mode at z11; data includes the zoom below]")
        say(f"n={n:<7} ours : server / first {first * 1000:.0f} ms, then median "
            f"{statistics.median(times) * 1000:.2f} ms, p95 {times[189] * 1000:.2f} ms; "
            f"tti {ours['tti']:.0f} ms; zoom to z14 {ours['zoom']:.0f} ms "
            f"[{ours['zoom_mode']}]; rps {rps:.0f}")
        naive(n, url, server, version, browser, naive_cache, tmp)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def naive(n: int, url: str, server: Server, version: str, browser: Browser,
          cache: dict, tmp: Path) -> None:
    base = cache.get("base")
    if base and base[0] * n / base[1] > NAIVE_LIMIT_S:
        scale = n / base[1]
        r = base[2]
        say(f"n={n:<7} naive: est. from n={base[1]}: bytes {kb(r['raw'] * scale)} raw, "
            f"{kb(r['gz'] * scale)} gzip; render {base[0] * scale:.0f} s; "
            f"tti {r['tti'] * scale / 1000:.0f} s; rps {2 / (base[0] * scale):.3g} (est.)")
        return
    t = time.perf_counter()
    html = naive_page(url, server.base, version)
    render = time.perf_counter() - t
    (tmp / "naive.html").write_text(html, encoding="utf-8")
    raw, gz = len(html.encode()), len(gzip.compress(html.encode(), 6))
    site, static = static_server(tmp)
    try:
        res = browser.visit(site + "/naive.html", "() => document.readyState === 'complete'")
    finally:
        static.shutdown()
    p = res["sizes"]["page"]
    say(f"n={n:<7} naive: bytes page {kb(p[0])} raw (HTML {kb(raw)}, {kb(gz)} if gzipped); "
        f"render {render * 1000:.0f} ms; tti {res['tti']:.0f} ms; "
        f"rps {2 / render:.3g} (2 workers / render)")
    # Transferred if the HTML were gzipped: its gzip size plus the assets as sent.
    cache["base"] = (render, n, {"raw": p[0], "gz": gz + (p[1] - raw), "tti": res["tti"]})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per size")
    parser.add_argument("--front", choices=("nginx", "direct", "both"), default="both",
                        help="serve as scripts/run does (nginx in front of gunicorn), with "
                             "bare gunicorn, or nginx plus a same-run rps comparison with "
                             "bare gunicorn (default)")
    parser.add_argument("--rounds", type=int, default=7,
                        help="first visits per way of serving the map's scripts, at the "
                             "first size (0: no comparison)")
    args = parser.parse_args()
    say(f"# bench_map {dt.datetime.now().isoformat(timespec='seconds')} on "
        f"{os.cpu_count()} cores; gunicorn 2 sync workers"
        f"{' alone' if args.front == 'direct' else ' behind nginx (scripts/serve)'}; "
        "SpatiaLite; Chromium 1280x800")
    browser = Browser()
    cache: dict = {}
    try:
        for i, n in enumerate(int(s) for s in args.sizes.split(",")):
            run_size(n, args.seconds, browser, cache, args.front,
                     args.rounds if i == 0 else 0)
    finally:
        browser.close()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"map-{dt.date.today().isoformat()}.txt"
    out.write_text("\n".join(LINES) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
