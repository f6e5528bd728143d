#!/usr/bin/env python
"""OGC API - Features: voicemap's /ogc against pygeoapi, the same PostGIS table, one run.

    .venv/bin/python bench/bench_ogc.py [--venues 1000000] [--seconds 10] [--copy 100000]
        [--keep] [--pygeoapi-version 0.21.0]

Loads N synthetic venues into a throwaway PostGIS database (as bench_registry.py does),
installs pygeoapi from PyPI into a throwaway virtualenv (a yardstick, not a dependency),
writes it a PostgreSQL provider configuration for the same ``venues`` table, and serves
both with gunicorn, 2 sync workers each (voicemap as scripts/run serves it, nginx in
front). Then, alternating the servers (A B B A) so the machine's drift weighs on both:

  items   requests/s of an items page of 100 features in a random 0.02-degree bbox
  cql2    requests/s of an items page of 100 features with a CQL2 attribute filter
  copy    ogr2ogr (GDAL's OAPIF driver, pages of 1,000) copying the features of a bbox
          holding about --copy of them: wall time, features, and the server workers' peak
          RSS after copying a tenth of that and after the whole (flat = memory does not
          grow with the features served)

Targets: voicemap >= 2x pygeoapi on each; server memory flat. Needs PostgreSQL + PostGIS on
127.0.0.1:5432 (role postgres), wrk, ogr2ogr, and network access to PyPI for pygeoapi.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg
from bench_registry import (  # bench/ is on sys.path when run as a script
    ADMIN_URL,
    AREA,
    OUT_DIR,
    Registry,
    load_postgis,
    met,
    say,
)
from common import Server, children, free_port
from sqlalchemy.engine import make_url

TARGET_RATIO = 2.0
TARGET_FLAT = 1.25  # peak RSS after the whole copy at most 1.25x that after a tenth
BOX = 0.02  # degrees: about 1,900 of 1,000,000 venues
FILTER = "category = 'museum' AND min_age <= 5"
WRK_LUA = textwrap.dedent("""
    -- wrk: items pages, a different random bbox (seeded: the same for both servers) per
    -- request, or the CQL2 filter.
    local prefix, mode = "", "bbox"
    function init(args) prefix = args[1]; mode = args[2]; suffix = args[3] or "" end
    math.randomseed(7)
    function request()
      if mode == "bbox" then
        local x = %f + math.random() * (%f - %f)
        local y = %f + math.random() * (%f - %f)
        return wrk.format("GET", string.format("%%s?limit=100&bbox=%%.5f,%%.5f,%%.5f,%%.5f%%s",
          prefix, x, y, x + %f, y + %f, suffix))
      end
      return wrk.format("GET", prefix .. "?limit=100&filter=%s" .. suffix)
    end
    function done(summary, latency, requests)
      local e = summary.errors
      io.write(string.format('WRK {"requests": %%d, "duration_us": %%d, "p50_us": %%d, '
        .. '"errors": %%d, "status": %%d}\\n', summary.requests, summary.duration,
        latency:percentile(50), e.connect + e.read + e.write + e.timeout, e.status))
    end
""")


def lua() -> str:
    from urllib.parse import quote

    return WRK_LUA % (AREA[0], AREA[2] - BOX, AREA[0], AREA[1], AREA[3] - BOX, AREA[1],
                      BOX, BOX, quote(FILTER))


class PygeoapiServer:
    """pygeoapi under gunicorn (2 sync workers) reading the same PostGIS table."""

    def __init__(self, venv: Path, dbname: str, tmp: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.kind = "pygeoapi"
        u = make_url(ADMIN_URL)
        config = tmp / "pygeoapi.yml"
        config.write_text(textwrap.dedent(f"""
            server:
              bind: {{host: 127.0.0.1, port: {self.port}}}
              url: {self.base}
              mimetype: application/json; charset=UTF-8
              encoding: utf-8
              language: en-US
              limit: 10
              limits: {{default_items: 10, max_items: 10000}}
              map: {{url: "https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png",
                    attribution: OpenStreetMap}}
            logging: {{level: ERROR}}
            metadata:
              identification: {{title: bench, description: bench, keywords: [bench],
                               keywords_type: theme, terms_of_service: none, url: none}}
              license: {{name: none, url: none}}
              provider: {{name: none, url: none}}
              contact: {{name: none, position: none, address: none, city: none,
                        stateorprovince: none, postalcode: none, country: none,
                        phone: none, fax: none, email: none, url: none, hours: none,
                        instructions: none, role: pointOfContact}}
            resources:
              venues:
                type: collection
                title: venues
                description: the same venues table
                keywords: [venues]
                extents:
                  spatial: {{bbox: [{AREA[0]}, {AREA[1]}, {AREA[2]}, {AREA[3]}],
                            crs: http://www.opengis.net/def/crs/OGC/1.3/CRS84}}
                providers:
                  - type: feature
                    name: PostgreSQL
                    data: {{host: {u.host or '127.0.0.1'}, port: {u.port or 5432},
                           dbname: {dbname}, user: {u.username or 'postgres'},
                           password: "{u.password or ''}", search_path: [public]}}
                    id_field: id
                    table: venues
                    geom_field: geom
        """))
        openapi = tmp / "pygeoapi-openapi.yml"
        env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
        with openapi.open("w") as fh:
            subprocess.run([str(venv / "bin" / "pygeoapi"), "openapi", "generate",
                            str(config)], stdout=fh, env=env, check=True)
        self.log = open(tmp / f"pygeoapi-{self.port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(venv / "bin" / "gunicorn"), "--workers", "2", "--worker-class", "sync",
             "--bind", f"127.0.0.1:{self.port}", "--timeout", "600", "--no-control-socket",
             "--log-level", "warning", "pygeoapi.flask_app:APP"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(self.base + "/collections/venues?f=json",
                                            timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pygeoapi did not start: see {self.log.name}")
            time.sleep(0.5)

    def workers(self) -> list[int]:
        return children(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


def pygeoapi_venv(version: str, where: Path) -> Path:
    """A virtualenv with pygeoapi from PyPI, and psycopg2 and GeoAlchemy2, which its
    PostgreSQL provider imports."""
    venv = where / f"pygeoapi-{version}"
    if not (venv / "bin" / "pygeoapi").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"pygeoapi=={version}",
                        "psycopg2-binary", "geoalchemy2", "gunicorn"], check=True)
    return venv


def wrk(url: str, script: Path, mode: str, seconds: int, suffix: str = "") -> dict:
    """wrk (1 thread, 4 connections) on the items ``url`` in ``mode`` (bbox or cql2)."""
    parts = urllib.parse.urlsplit(url)
    out = subprocess.run(["wrk", "-t1", "-c4", f"-d{seconds}s", "--timeout", "30s", "-s",
                          str(script), f"{parts.scheme}://{parts.netloc}", "--", parts.path,
                          mode, suffix], capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRK "))
    res = json.loads(line[4:])
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    return res


def peak_rss_mb(pids: list[int]) -> float:
    """The largest VmHWM (peak resident memory) among these processes."""
    best = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return best


def items_url(server) -> str:
    if isinstance(server, PygeoapiServer):
        return server.base + "/collections/venues/items"
    return server.base + "/ogc/collections/venues/items"


def check_same(servers: dict) -> None:
    """Both answer the same features for one bbox and for the filter (before timing)."""
    from urllib.parse import quote

    box = f"{AREA[0] + 0.1},{AREA[1] + 0.1},{AREA[0] + 0.1 + BOX},{AREA[1] + 0.1 + BOX}"
    found = {}
    for name, server in servers.items():
        suffix = "&f=json" if name == "pygeoapi" else ""
        ids = []
        for query in (f"bbox={box}", "filter=" + quote(FILTER)):
            with urllib.request.urlopen(f"{items_url(server)}?limit=10000&{query}{suffix}",
                                        timeout=300) as r:
                doc = json.loads(r.read())
            ids.append((sorted(str(f["id"]) for f in doc["features"]),
                        doc.get("numberMatched")))
        found[name] = ids
    a, b = found.values()
    for (ids_a, n_a), (ids_b, n_b), what in zip(a, b, ("bbox", "cql2"), strict=True):
        same = ids_a == ids_b if n_a <= 10000 else n_a == n_b
        say(f"check {what}: voicemap {n_a} matched, pygeoapi {n_b}; "
            f"{'same features' if same else 'DIFFERENT'}")


def bench_rps(servers: dict, tmp: Path, seconds: int) -> dict:
    script = tmp / "ogc.lua"
    script.write_text(lua())
    for mode in ("bbox", "cql2"):  # warm-up
        for name, server in servers.items():
            wrk(items_url(server), script, mode, 2, "&f=json" if name == "pygeoapi" else "")
    runs: dict = {}
    rounds = max(1, seconds // 2)
    names = list(servers)
    for i in range(rounds):
        for mode in ("bbox", "cql2"):
            for name in (names if i % 2 == 0 else names[::-1]):
                server = servers[name]
                runs.setdefault((name, mode), []).append(
                    wrk(items_url(server), script, mode, 2,
                        "&f=json" if name == "pygeoapi" else ""))
    out = {}
    for (name, mode), rs in runs.items():
        requests = sum(r["requests"] for r in rs)
        out[name, mode] = {"rps": requests / (sum(r["duration_us"] for r in rs) / 1e6),
                           "p50": sum(r["p50_us"] for r in rs) / len(rs) / 1000,
                           "bad": sum(r["errors"] + r["status"] for r in rs),
                           "requests": requests}
    for mode, what in (("bbox", "items page of 100 with a random bbox"),
                       ("cql2", f"items page of 100 with filter={FILTER!r}")):
        for name in names:
            r = out[name, mode]
            bad = f", {r['bad']} errors" if r["bad"] else ""
            say(f"{mode}  [{name}] {what}: {r['rps']:,.1f} req/s, median "
                f"{r['p50']:.1f} ms ({r['requests']:,} requests{bad})")
        ratio = out["voicemap", mode]["rps"] / out["pygeoapi", mode]["rps"]
        say(f"{mode}  voicemap / pygeoapi: {ratio:.2f}x "
            f"(target >= {TARGET_RATIO}x: {met(ratio >= TARGET_RATIO)})")
    return out


def copy_box(fraction: float) -> tuple[float, float, float, float]:
    """A box holding about ``fraction`` of the (uniformly spread) venues."""
    side = fraction ** 0.5
    return (AREA[0], AREA[1], AREA[0] + (AREA[2] - AREA[0]) * side,
            AREA[1] + (AREA[3] - AREA[1]) * side)


def ogr2ogr(server, box, tmp: Path) -> tuple[float, int]:
    out = tmp / f"copy-{server.port}.gpkg"
    out.unlink(missing_ok=True)
    base = server.base if isinstance(server, PygeoapiServer) else server.base + "/ogc"
    t0 = time.perf_counter()
    subprocess.run(["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{base}", "venues",
                    "-oo", "PAGE_SIZE=1000", "-spat", *map(str, box)],
                   check=True, capture_output=True)
    elapsed = time.perf_counter() - t0
    n = int(subprocess.run(["ogrinfo", "-ro", "-so", str(out), "venues"], capture_output=True,
                           text=True, check=True).stdout.split("Feature Count:")[1].split()[0])
    return elapsed, n


def bench_copy(servers: dict, n_total: int, copy: int, tmp: Path) -> None:
    small, large = copy_box(copy / 10 / n_total), copy_box(copy / n_total)
    res = {}
    for name, server in servers.items():
        ogr2ogr(server, small, tmp)
        after_small = peak_rss_mb(server.workers())
        elapsed, n = ogr2ogr(server, large, tmp)
        after_large = peak_rss_mb(server.workers())
        res[name] = elapsed
        flat = after_large <= after_small * TARGET_FLAT
        say(f"copy  [{name}] ogr2ogr {n:,} features in {elapsed:.1f} s "
            f"({n / elapsed:,.0f} features/s); worker peak RSS {after_small:.0f} MB after "
            f"{copy // 10:,}, {after_large:.0f} MB after {copy:,} "
            f"(flat, target <= {TARGET_FLAT}x: {met(flat)})")
    ratio = res["pygeoapi"] / res["voicemap"]
    say(f"copy  voicemap / pygeoapi speed: {ratio:.2f}x "
        f"(target >= {TARGET_RATIO}x: {met(ratio >= TARGET_RATIO)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venues", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--copy", type=int, default=100_000)
    ap.add_argument("--keep", action="store_true",
                    help="keep the database and pygeoapi's virtualenv, and reuse them")
    ap.add_argument("--pygeoapi-version", default="0.21.0")
    args = ap.parse_args()
    for tool in ("wrk", "ogr2ogr"):
        if not shutil.which(tool):
            print(f"bench_ogc: {tool} is not on PATH", file=sys.stderr)
            return 1
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    cache = Path(tempfile.gettempdir()) / "voicemap_bench" / "ogc"
    cache.mkdir(parents=True, exist_ok=True)
    name = f"voicemap_bench_ogc_{args.venues}"
    say(f"# bench_ogc {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {args.venues:,} venues "
        f"(PostGIS), pygeoapi {args.pygeoapi_version}")
    try:
        venv = pygeoapi_venv(args.pygeoapi_version, cache)
    except subprocess.CalledProcessError as exc:
        say(f"pygeoapi could not be installed from PyPI ({exc}); nothing to compare with")
        return 1
    url = load_postgis(Registry(args.venues), name, args.keep)
    servers: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-ogc-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            servers["voicemap"] = Server(url, tmp)
            servers["pygeoapi"] = PygeoapiServer(venv, name, tmp)
            check_same(servers)
            bench_rps(servers, tmp, args.seconds)
            bench_copy(servers, args.venues, args.copy, tmp)
        finally:
            for server in servers.values():
                server.stop()
    if not args.keep:
        shutil.rmtree(venv, ignore_errors=True)
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    (OUT_DIR / f"ogc-{dt.date.today()}.txt").write_text("\n".join(_lines()) + "\n")
    return 0


def _lines() -> list[str]:
    from bench_registry import LINES

    return LINES


if __name__ == "__main__":
    sys.exit(main())
