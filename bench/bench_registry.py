#!/usr/bin/env python
"""Registry benchmark: nearest-k in the database layer, over HTTP, and the full export.

    .venv/bin/python bench/bench_registry.py [--sizes 100,10000,1000000]
        [--backends spatialite,postgis] [--front both|nginx|direct] [--quick] [--keep]

For each backend and size N it loads N synthetic venues spread over central Beijing
(PostgreSQL COPY / one SQLite transaction, spatial index built afterwards; the registry's
own upsert is bypassed), then prints one line per figure:

  db      ``venues.nearest`` k=10 at random points: median and p99 over 2,000 queries
  http    wrk against the app as scripts/run serves it (nginx in front of gunicorn, 2 sync
          workers) and, side by side in the same run, bare gunicorn (--front): ``/api/version``
          (no database) and ``/api/nearest?k=10`` at random points, requests/s, latency,
          their ratio, and nginx's cost against bare gunicorn
  export  PostGIS only: ``GET /api/venues``, ``voicemap export --format geojson`` and
          ``ogr2ogr -f GeoJSON`` features/s and the client's peak RSS
  check   nearest results against a brute-force geodesic search (pyproj), and the HTTP and
          CLI exports against each other

Output also goes to bench/output/registry-<date>.txt. Needs PostgreSQL (PostGIS) on
127.0.0.1:5432 as role postgres (override with VOICEMAP_BENCH_POSTGRES_URL), wrk and
ogr2ogr on PATH. Throwaway databases are called voicemap_bench_*; they are dropped at the
end unless --keep, which also reuses them on the next --keep run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import psycopg
from common import (  # bench/ is on sys.path when run as a script
    LINES,
    Server,
    bulk_load_spatialite,
    met,
    say,
)
from pyproj import Geod
from sqlalchemy.engine import make_url

from voicemap import categories, db, models, venues
from voicemap.backends import postgis, spatialite

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT_DIR = ROOT / "bench" / "output"
ADMIN_URL = os.environ.get("VOICEMAP_BENCH_POSTGRES_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
# Where the synthetic venues and the query points fall: Beijing inside the 6th ring road.
AREA = (116.10, 39.75, 116.70, 40.10)
K = 10
DB_QUERIES = 2000
CHECK_QUERIES = 20
DISTRICTS = ("东城区", "西城区", "朝阳区", "海淀区", "丰台区", "石景山区")
COLUMNS = ("id", *models.VENUE_FIELDS, "updated_at")
UPDATED_AT = "2025-01-01 00:00:00+00:00"
TARGET_DB_MS = 0.5
TARGET_HTTP_RATIO = 0.5
TARGET_FRONT_RATIO = 0.9  # nginx in front may cost at most 10% of bare gunicorn's req/s
TARGET_EXPORT_RATIO = 2.0
TARGET_RSS_MB = 64
TIME = "/usr/bin/time"  # GNU time, for a child's own peak RSS



# --- synthetic registry ------------------------------------------------------------------


class Registry:
    """N venues made from one seed: the same data on both backends."""

    def __init__(self, n: int, seed: int = 20250101) -> None:
        rng = np.random.default_rng(seed + n)
        self.n = n
        self.lon = np.round(rng.uniform(AREA[0], AREA[2], n), 7)
        self.lat = np.round(rng.uniform(AREA[1], AREA[3], n), 7)
        self.cat = rng.integers(0, len(categories.IDS), n)
        self.flags = rng.integers(0, 3, (n, 3))  # 0 null, 1 false, 2 true
        self.ages = rng.integers(0, 13, n)
        self.ids = np.array([f"bench-{i:07d}" for i in range(n)])

    def rows(self, geom):
        """Tuples in COLUMNS order plus the geometry made by ``geom(lon, lat)``."""
        bools = (None, False, True)
        for i in range(self.n):
            a = int(self.ages[i])
            f = self.flags[i]
            yield (
                self.ids[i], f"测试场馆{i}", f"Bench venue {i}", categories.IDS[self.cat[i]],
                DISTRICTS[i % len(DISTRICTS)], f"北京市某路{i % 997}号" if i % 3 else None,
                f"No. {i % 997} Some Road, Beijing" if i % 3 else None,
                f"https://example.org/v/{i}" if i % 5 == 0 else None,
                "09:00-17:00" if i % 2 else None,
                "09:00-17:00" if i % 2 else None,
                "一个适合孩子们的地方。" if i % 4 == 0 else None,
                "A place for children." if i % 4 == 0 else None,
                # Provenance as the real registry records it: a source, its datum, what
                # the point marks (a note on some).
                f"osm:node/{1000000 + i}", ("wgs84", "gcj02")[i % 2],
                ("building", "entrance")[i % 2],
                "AMap POI, converted with voicemap.geo.gcj02_to_wgs84" if i % 2 else None,
                a if a < 10 else None, a + 6 if a < 8 else None, 20 + i % 200,
                bools[f[0]], bools[f[1]], bools[f[2]], UPDATED_AT,
                geom(float(self.lon[i]), float(self.lat[i])),
            )

    def brute_force(self, lon: float, lat: float, k: int, cat: int | None = None,
                    max_d: float | None = None) -> list[str]:
        """Ids of the k nearest by geodesic distance, then id: every venue measured."""
        _, _, d = GEOD.inv(np.full(self.n, lon), np.full(self.n, lat), self.lon, self.lat)
        keep = np.ones(self.n, dtype=bool)
        if cat is not None:
            keep &= self.cat == cat
        if max_d is not None:
            keep &= d <= max_d
        ids, d = self.ids[keep], d[keep]
        return [str(v) for v in ids[np.lexsort((ids, d))[:k]]]


GEOD = Geod(ellps="WGS84")


def query_points(n: int, seed: int) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    return list(zip(rng.uniform(AREA[0], AREA[2], n).tolist(),
                    rng.uniform(AREA[1], AREA[3], n).tolist(), strict=True))


def pg_url(name: str) -> str:
    return make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name) \
        .render_as_string(hide_password=False)


def pg_conninfo(name: str) -> str:
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def pg_count(name: str) -> int | None:
    try:
        with psycopg.connect(pg_conninfo(name), connect_timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM venues").fetchone()[0]
    except psycopg.Error:
        return None


def load_postgis(reg: Registry, name: str, reuse: bool) -> str:
    url = pg_url(name)
    if reuse and pg_count(name) == reg.n:
        return url
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = db.make_engine(url)
    db.init_schema(engine)
    cols = ", ".join((*COLUMNS, "geom"))
    with psycopg.connect(pg_conninfo(name), autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS idx_venues_geom")  # built after the rows
        with conn.cursor() as cur, cur.copy(f"COPY venues ({cols}) FROM STDIN") as copy:
            for row in reg.rows(lambda x, y: f"SRID=4326;POINT({x!r} {y!r})"):
                copy.write_row(row)
    with engine.begin() as conn:
        postgis.create_spatial_index(conn)
    engine.dispose()
    with psycopg.connect(pg_conninfo(name), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE venues")
    return url


def load_spatialite(reg: Registry, path: Path, reuse: bool) -> str:
    url = f"sqlite:///{path}"
    if reuse and path.exists():
        engine = db.make_engine(url)
        with engine.connect() as conn:
            n = conn.exec_driver_sql("SELECT count(*) FROM venues").scalar()
        engine.dispose()
        if n == reg.n:
            return url
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = db.make_engine(url)
    with engine.begin() as conn:
        spatialite.setup(conn)
    models.Base.metadata.create_all(engine)  # the R*Tree comes after the rows
    bulk_load_spatialite(engine, COLUMNS,
                         (row[:-1] + row[-1] for row in reg.rows(lambda x, y: (x, y))))
    stamp_head(url)  # made from the models, not the migrations: record that it is current
    return url


def stamp_head(url: str) -> None:
    """Record in a database made by ``create_all`` that its schema is the head revision."""
    from alembic import command

    engine = db.make_engine(url)
    with engine.begin() as conn:
        command.stamp(db.alembic_config(conn), "head")
    engine.dispose()


# --- 1. database layer -------------------------------------------------------------------


def bench_db(url: str, reg: Registry, tag: str) -> None:
    engine = db.make_engine(url)
    pts = query_points(DB_QUERIES, seed=7)
    times = []
    answers = {}
    with engine.connect() as conn:
        for lon, lat in pts[:100]:  # warm the caches and the prepared statements
            venues.nearest(conn, lon, lat, k=K)
        for i, (lon, lat) in enumerate(pts):
            t0 = time.perf_counter_ns()
            got = venues.nearest(conn, lon, lat, k=K)
            times.append(time.perf_counter_ns() - t0)
            if i < CHECK_QUERIES:
                answers[i] = [json.loads(f)["id"] for f in got]
    times.sort()
    med = statistics.median(times) / 1e6
    p99 = times[int(len(times) * 0.99)] / 1e6
    say(f"{tag} db    venues.nearest k={K}: median {med:.3f} ms, p99 {p99:.3f} ms over "
        f"{len(times)} queries (target median <= {TARGET_DB_MS} ms: {met(med <= TARGET_DB_MS)})")
    wrong = [i for i in answers
             if answers[i] != reg.brute_force(pts[i][0], pts[i][1], K)]
    # A category filter and a distance limit too, at a few points.
    park = categories.IDS.index("park")
    extra_ok = extra_all = 0
    with engine.connect() as conn:
        for lon, lat in pts[-5:]:
            got = [json.loads(f)["id"] for f in venues.nearest(conn, lon, lat, k=K,
                                                                 category=["park"])]
            extra_ok += got == reg.brute_force(lon, lat, K, cat=park)
            limit = 150.0
            got = [json.loads(f)["id"] for f in venues.nearest(conn, lon, lat, k=K,
                                                                 max_distance_m=limit)]
            extra_ok += got == reg.brute_force(lon, lat, K, max_d=limit)
            extra_all += 2
    engine.dispose()
    say(f"{tag} check nearest vs brute-force geodesic: "
        f"{len(answers) - len(wrong)}/{len(answers)} identical"
        + (f" (differ at queries {wrong})" if wrong else "")
        + f"; with category=park or max_distance_m=150: {extra_ok}/{extra_all} identical")
    say(f"{tag} plan  {plan_summary(url)}")


def plan_summary(url: str) -> str:
    """How the nearest statements reach the venues (index or not), from the planner."""
    engine = db.make_engine(url)
    with engine.connect() as conn:
        dbapi = conn.connection.driver_connection
        if conn.dialect.name == "postgresql":
            sql = postgis._nearest_sql(venues.EXTRA, K)
            params = postgis._nearest_params(116.4, 39.9, None, None)
            with dbapi.cursor() as cur:
                for _ in range(6):  # past psycopg's and the server's custom-plan phase
                    cur.execute(sql, params, prepare=True)
                    cur.fetchall()
                name = cur.execute("SELECT name FROM pg_prepared_statements "
                                   "WHERE statement LIKE '%WITH kth AS%'").fetchone()[0]
                plan = [r[0] for r in cur.execute(
                    f"EXPLAIN EXECUTE {name}(116.4, 39.9, NULL, NULL)").fetchall()]
            scans = [ln.strip().split("  (")[0].lstrip("-> ") for ln in plan
                     if "Scan" in ln and "venues" in ln]
            return "PostGIS generic plan: " + "; ".join(scans)
        box = dbapi.execute("EXPLAIN QUERY PLAN " + spatialite._in_box_sql(0),
                            dict.fromkeys(("minlon", "minlat", "maxlon", "maxlat"), 0))
        rows = dbapi.execute("EXPLAIN QUERY PLAN " + spatialite._features_sql(venues.EXTRA, 2),
                             (1, 2))
        return ("SpatiaLite box: " + "; ".join(r[3] for r in box.fetchall())
                + " | Features: " + "; ".join(r[3] for r in rows.fetchall()
                                              if "venues" in r[3] or " v " in r[3]))


# --- 2. HTTP -----------------------------------------------------------------------------

WRK_LUA = textwrap.dedent("""
    local minlon, minlat, maxlon, maxlat = %f, %f, %f, %f
    local k = %d
    local mode = "version"
    local counter = 0
    function setup(thread)
      counter = counter + 1
      thread:set("id", counter)
    end
    function init(args)
      mode = args[1] or "version"
      math.randomseed(os.time() * 1000 + (id or 0))
    end
    function request()
      if mode == "nearest" then
        local lon = minlon + math.random() * (maxlon - minlon)
        local lat = minlat + math.random() * (maxlat - minlat)
        return wrk.format("GET", string.format(
          "/api/nearest?lat=%%.6f&lon=%%.6f&k=%%d", lat, lon, k))
      end
      return wrk.format("GET", "/api/version")
    end
    function done(summary, latency, requests)
      local e = summary.errors
      io.write(string.format(
        'WRK {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, '
        .. '"errors": %%d, "status": %%d}\\n',
        summary.requests, summary.duration, latency:percentile(50),
        latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
    end
""") % (*AREA, K)


def wrk(server: Server, script: Path, mode: str, seconds: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t1", "-c8", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
         server.base, "--", mode], capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRK "))
    res = json.loads(line[4:])
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    return res


def bench_http(servers: dict[str, Server], tmp: Path, seconds: int, tag: str) -> None:
    """Both endpoints on every server for ``seconds`` each, in 2 s runs that alternate
    endpoint and server (A B B A), so that the machine's drift weighs on all alike. Also the
    servers' own CPU time per request, which other load on the machine hardly skews."""
    script = tmp / "nearest.lua"
    script.write_text(WRK_LUA)
    fronts = list(servers)
    for server in servers.values():
        doc = json.loads(server.get(f"/api/nearest?lat=39.9&lon=116.4&k={K}"))
        assert doc["type"] == "FeatureCollection" and len(doc["features"]) == K, doc
        for mode in ("version", "nearest"):  # warm-up: connections, prepared statements
            wrk(server, script, mode, 2)
    runs: dict[tuple[str, str], list[dict]] = {}
    cpu: dict[tuple[str, str], float] = {}
    chunk = 2
    rounds = max(1, seconds // chunk)
    for i in range(rounds):
        for mode in (("version", "nearest") if i % 2 == 0 else ("nearest", "version")):
            for front in (fronts if (i + (mode == "nearest")) % 2 == 0 else fronts[::-1]):
                server = servers[front]
                c0 = server.cpu_seconds()
                runs.setdefault((front, mode), []).append(wrk(server, script, mode, chunk))
                cpu[front, mode] = cpu.get((front, mode), 0.0) + server.cpu_seconds() - c0
    res = {}
    for key, rs in runs.items():
        res[key] = {
            "requests": sum(r["requests"] for r in rs),
            "rps": sum(r["requests"] for r in rs) / (sum(r["duration_us"] for r in rs) / 1e6),
            "p50_us": statistics.mean(r["p50_us"] for r in rs),
            "p99_us": max(r["p99_us"] for r in rs),
            "bad": sum(r["errors"] + r["status"] for r in rs),
            "cpu_ms": cpu[key] * 1000 / max(1, sum(r["requests"] for r in rs))}
    for front in fronts:
        for mode, path in (("version", "/api/version"), ("nearest", f"/api/nearest k={K}")):
            r = res[front, mode]
            errors = f", {r['bad']} errors" if r["bad"] else ""
            line = (f"{tag} http  [{servers[front].kind}] {path}: {r['rps']:,.0f} req/s, "
                    f"median {r['p50_us'] / 1000:.2f} ms, p99 {r['p99_us'] / 1000:.2f} ms, "
                    f"server CPU {r['cpu_ms']:.2f} ms/request ({r['requests']:,} requests in "
                    f"{rounds} x {chunk} s{errors})")
            if mode == "nearest":
                ratio = r["rps"] / res[front, "version"]["rps"]
                line += (f", {ratio:.2f}x /api/version "
                         f"(target >= {TARGET_HTTP_RATIO}x: {met(ratio >= TARGET_HTTP_RATIO)})")
            say(line)
    if "direct" in servers and "nginx" in servers:
        ratios = {mode: res["nginx", mode]["rps"] / res["direct", mode]["rps"]
                  for mode in ("version", "nearest")}
        costs = {mode: res["nginx", mode]["cpu_ms"] / res["direct", mode]["cpu_ms"]
                 for mode in ("version", "nearest")}
        worst = min(ratios.values())
        say(f"{tag} http  nginx in front / bare gunicorn, same run: req/s /api/version "
            f"{ratios['version']:.2f}x, /api/nearest {ratios['nearest']:.2f}x "
            f"(target >= {TARGET_FRONT_RATIO}x: {met(worst >= TARGET_FRONT_RATIO)}); server "
            f"CPU per request {costs['version']:.2f}x, {costs['nearest']:.2f}x")


# --- 3. export ---------------------------------------------------------------------------


def run_measured(cmd: list[str], **kwargs) -> tuple[float, float]:
    """Run a command; its wall time (s) and its own peak RSS (MB), by GNU time.

    (A child's rusage would count the pages it shared with this big process before exec.)
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        t0 = time.perf_counter()
        subprocess.run([TIME, "-f", "%M", "-o", rss.name, *cmd], check=True, **kwargs)
        elapsed = time.perf_counter() - t0
        return elapsed, int(rss.read().split()[-1]) / 1024


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_collection(path: Path, n: int) -> str | None:
    """A problem with the exported FeatureCollection, or None."""
    if n <= 20_000:
        doc = json.loads(path.read_text(encoding="utf-8"))
        ids = [f["id"] for f in doc["features"]]
        if doc["type"] != "FeatureCollection" or len(ids) != n or ids != sorted(ids):
            return "not the whole registry ordered by id"
        return None
    with path.open("rb") as fh:
        lines = sum(1 for _ in fh)
    return None if lines == n + 2 else f"{lines - 2} feature lines, expected {n}"


def bench_export(server: Server, url: str, name: str, reg: Registry, tmp: Path,
                 tag: str) -> None:
    n = reg.n
    http_out, cli_out, ogr_out = (tmp / f"export-{what}.geojson"
                                  for what in ("http", "cli", "ogr"))
    before = {pid: vm_hwm_mb(pid) for pid in server.workers()}
    secs, rss = run_measured(["curl", "-sSf", "-o", str(http_out),
                              server.base + "/api/venues"])
    worker = max(vm_hwm_mb(pid) for pid in before)
    say(f"{tag} export [{server.kind}] GET /api/venues: {n:,} features in {secs:.2f} s = "
        f"{n / secs:,.0f} features/s, client (curl) peak RSS {rss:.0f} MB, "
        f"server worker peak RSS {worker:.0f} MB (before {max(before.values()):.0f} MB)")
    http_rate = n / secs

    env = {**os.environ, "VOICEMAP_SECRET_KEY": "bench",
           "VOICEMAP_MEDIA_DIR": str(tmp / "media")}
    base_secs, base_rss = run_measured([str(BIN / "voicemap"), "--help"], env=env,
                                       stdout=subprocess.DEVNULL)
    secs, rss = run_measured([str(BIN / "voicemap"), "--database-url", url, "export",
                              "--format", "geojson", "-o", str(cli_out)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli_rate = n / secs
    say(f"{tag} export voicemap export --format geojson: {n:,} features in {secs:.2f} s = "
        f"{cli_rate:,.0f} features/s, peak RSS {rss:.0f} MB (`voicemap --help` alone: "
        f"{base_rss:.0f} MB; target < {TARGET_RSS_MB} MB: {met(rss < TARGET_RSS_MB)}, "
        f"growth {rss - base_rss:+.0f} MB)")

    secs, rss = run_measured(["ogr2ogr", "-f", "GeoJSON", str(ogr_out),
                              f"PG:{pg_conninfo(name)}", "venues"])
    ogr_rate = n / secs
    ok = min(http_rate, cli_rate) >= TARGET_EXPORT_RATIO * ogr_rate
    verdict = (f"target >= {TARGET_EXPORT_RATIO}x: {met(ok)}" if n >= 1_000_000
               else "start-up bound at this size; the target is for 1,000,000")
    say(f"{tag} export ogr2ogr -f GeoJSON: {n:,} features in {secs:.2f} s = "
        f"{ogr_rate:,.0f} features/s, peak RSS {rss:.0f} MB; GET /api/venues "
        f"{http_rate / ogr_rate:.1f}x, voicemap export {cli_rate / ogr_rate:.1f}x ({verdict})")

    problems = [f"{p.name}: {msg}" for p in (http_out, cli_out)
                if (msg := check_collection(p, n))]
    if digest(http_out) != digest(cli_out):
        problems.append("GET /api/venues and voicemap export differ")
    say(f"{tag} check exports: " + ("; ".join(problems) if problems else
                                   f"both complete, ordered, byte-identical "
                                   f"({http_out.stat().st_size / 1e6:,.0f} MB)"))
    for path in (http_out, cli_out, ogr_out):
        path.unlink(missing_ok=True)


# --- driver ------------------------------------------------------------------------------


def versions() -> str:
    parts = [f"{os.cpu_count()} cores", f"Python {platform.python_version()}"]
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=5) as conn:
            parts.append("PostgreSQL " + conn.execute("SHOW server_version").fetchone()[0]
                         .split()[0])
    except psycopg.Error:
        pass
    engine = db.make_engine("sqlite://")
    with engine.connect() as conn:
        sv, lv = conn.exec_driver_sql("SELECT spatialite_version(), sqlite_version()").one()
    engine.dispose()
    parts += [f"SpatiaLite {sv} (SQLite {lv})"]
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
    parts.append(" ".join(wrk_v[:2]))
    return ", ".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,10000,1000000")
    ap.add_argument("--backends", default="spatialite,postgis")
    ap.add_argument("--quick", action="store_true",
                    help="N=100 and 10,000 only, 4 s wrk runs (a smoke check)")
    ap.add_argument("--seconds", type=int, default=None, help="wrk run length (default 10)")
    ap.add_argument("--front", choices=("nginx", "direct", "both"), default="both",
                    help="serve as scripts/run does (nginx in front of gunicorn), with bare "
                         "gunicorn, or both side by side in the same run (default)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the loaded databases and reuse them on the next --keep run")
    args = ap.parse_args()
    sizes = [100, 10_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    names = [b.strip() for b in args.backends.split(",")]
    for missing in [b for b in names if b not in ("spatialite", "postgis")]:
        ap.error(f"unknown backend {missing!r}")
    seconds = args.seconds or (4 if args.quick else 10)
    fronts = {"both": ["direct", "nginx"], "nginx": ["nginx"], "direct": ["direct"]}[args.front]
    for tool in ("wrk", "curl", TIME) + (("ogr2ogr",) if "postgis" in names else ()):
        if shutil.which(tool) is None:
            ap.error(f"{tool} is not on PATH")

    started = dt.datetime.now()
    say(f"# voicemap registry benchmark {started:%Y-%m-%d %H:%M}, {versions()}")
    say(f"# venues uniform in {AREA}, random categories; k={K}; wrk -t1 -c8 -d{seconds}s; "
        "gunicorn --workers 2 --worker-class sync"
        + {"both": ", bare and behind nginx (scripts/serve)", "nginx": " behind nginx "
           "(scripts/serve)", "direct": " alone"}[args.front])
    tag_id = "keep" if args.keep else str(os.getpid())
    workdir = Path(tempfile.gettempdir()) / "voicemap_bench"
    to_drop: list[tuple[str, object]] = []
    try:
        for n in sizes:
            reg = Registry(n)
            for backend in names:
                tag = f"[{backend:<10} N={n:>9,}]"
                with tempfile.TemporaryDirectory(prefix="voicemap-bench-") as tmpdir:
                    tmp = Path(tmpdir)
                    t0 = time.perf_counter()
                    if backend == "postgis":
                        name = f"voicemap_bench_{tag_id}_{n}"
                        to_drop.append(("postgis", name))
                        url = load_postgis(reg, name, args.keep)
                    else:
                        path = workdir / f"{tag_id}_{n}.sqlite"
                        to_drop.append(("spatialite", path))
                        url = load_spatialite(reg, path, args.keep)
                    say(f"{tag} load  {n:,} venues ready in {time.perf_counter() - t0:.1f} s")
                    bench_db(url, reg, tag)
                    servers: dict[str, Server] = {}
                    try:
                        for front in fronts:
                            servers[front] = Server(url, tmp, direct=front == "direct")
                        bench_http(servers, tmp, seconds, tag)
                        if backend == "postgis":
                            bench_export(servers[fronts[-1]], url, name, reg, tmp, tag)
                    finally:
                        for server in servers.values():
                            server.stop()
    finally:
        if not args.keep:
            for kind, what in to_drop:
                if kind == "postgis":
                    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                        admin.execute(f'DROP DATABASE IF EXISTS "{what}" WITH (FORCE)')
                else:
                    for suffix in ("", "-wal", "-shm"):
                        Path(str(what) + suffix).unlink(missing_ok=True)
        say(f"# done in {(dt.datetime.now() - started).total_seconds():.0f} s")
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        out = OUT_DIR / f"registry-{started:%Y-%m-%d}{'-quick' if args.quick else ''}.txt"
        out.write_text("\n".join(LINES) + "\n", encoding="utf-8")
        print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
