#!/usr/bin/env python
"""Vector tiles benchmark: tiles/s, tile sizes and server memory at 1,000,000 venues.

    .venv/bin/python bench/bench_tiles.py [--venues 1000000] [--backends spatialite,postgis]
        [--seconds 10] [--keep]

For each backend it loads the registry benchmark's synthetic venues (uniform over central
Beijing; ``bench_registry.Registry``, loaded the same fast way) and serves them as
scripts/run does (nginx in front of gunicorn, 2 sync workers). Then, per line:

  z=14   wrk at random z=14 tiles over the venues' area: tiles/s, latency; the tiles' sizes
         (a sample of 50) and how many were thinned to clusters
  z=10   the same at the z=10 tiles over the area (each holds ~100,000+ venues: clusters)
  z=4    the one z=4 tile holding all of Beijing (every venue): tiles/s, latency, size

The first fetch of each sampled tile is timed alone (cold); cluster tiles are then fetched
a few more times so that both workers hold them, before wrk measures:

  memory the gunicorn workers' peak RSS (VmHWM) after all of it and at start, and the
         private and file-mapped parts now

Output also goes to bench/output/tiles-<date>.txt. Needs PostgreSQL (PostGIS) on
127.0.0.1:5432 as role postgres (or VOICEMAP_BENCH_POSTGRES_URL) and wrk on PATH.
Throwaway databases are called voicemap_bench_tiles_*; dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psycopg
from bench_registry import (  # bench/ is on sys.path when run as a script
    ADMIN_URL,
    AREA,
    Registry,
    load_postgis,
    load_spatialite,
    versions,
    vm_hwm_mb,
)
from common import LINES, Server, say

from voicemap import tiles

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "output"
SAMPLE = 50
TARGET_Z4_KB = 64  # a tile at the lowest zooms stays small however many venues it covers


def status_mb(pid: int, field: str) -> float:
    """A /proc/<pid>/status figure in MB (RssAnon: private memory; RssFile: mapped files)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tiles_over(area: tuple[float, float, float, float], z: int) -> list[tuple[int, int, int]]:
    """Every tile of level z that the WGS-84 box touches."""
    out = []
    for lim in tiles.limits(area):
        if lim["tileMatrix"] == str(z):
            out = [(z, x, y) for x in range(lim["minTileCol"], lim["maxTileCol"] + 1)
                   for y in range(lim["minTileRow"], lim["maxTileRow"] + 1)]
    return out


WRK_LUA = textwrap.dedent("""
    local paths = {}
    for line in io.lines("%s") do paths[#paths + 1] = line end
    local counter = 0
    function setup(thread)
      counter = counter + 1
      thread:set("id", counter)
    end
    function init(args)
      math.randomseed(os.time() * 1000 + (id or 0))
    end
    function request()
      return wrk.format("GET", paths[math.random(#paths)])
    end
    function done(summary, latency, requests)
      local e = summary.errors
      io.write(string.format(
        'WRK {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, '
        .. '"errors": %%d, "status": %%d, "bytes": %%d}\\n',
        summary.requests, summary.duration, latency:percentile(50),
        latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status,
        summary.bytes))
    end
""")


def wrk(server: Server, tmp: Path, paths: list[str], seconds: int) -> dict:
    listing = tmp / f"paths-{len(paths)}-{random.random():.6f}.txt"
    listing.write_text("\n".join(paths) + "\n")
    script = tmp / "tiles.lua"
    script.write_text(WRK_LUA % listing)
    out = subprocess.run(
        ["wrk", "-t1", "-c8", f"-d{seconds}s", "--timeout", "30s", "-s", str(script),
         server.base], capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRK "))
    res = json.loads(line[4:])
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    return res


def sizes(server: Server, paths: list[str]) -> tuple[list[int], int, int]:
    """Bytes of each tile, how many were empty and how many were thinned to clusters."""
    import mapbox_vector_tile

    out, empty, thinned = [], 0, 0
    for path in paths:
        body = server.get(path)
        out.append(len(body))
        if not body:
            empty += 1
            continue
        feats = mapbox_vector_tile.decode(body)["venues"]["features"]
        thinned += any(f["properties"].get("cluster") for f in feats)
    return out, empty, thinned


def bench_backend(url: str, tmp: Path, seconds: int, tag: str) -> None:
    server = Server(url, tmp)
    try:
        before = max(vm_hwm_mb(pid) for pid in server.workers())
        base = "/ogc/collections/venues/tiles/WebMercatorQuad"
        rng = random.Random(14)
        z14 = tiles_over(AREA, 14)
        z10 = tiles_over(AREA, 10)
        lon, lat = (AREA[0] + AREA[2]) / 2, (AREA[1] + AREA[3]) / 2
        z4 = [(4, *tiles_over((lon, lat, lon, lat), 4)[0][1:])]
        for z, found in ((14, z14), (10, z10), (4, z4)):
            paths = [f"{base}/{t[0]}/{t[1]}/{t[2]}" for t in found]
            sample = rng.sample(paths, min(SAMPLE, len(paths)))
            t0 = time.perf_counter()
            got, empty, thinned = sizes(server, sample)
            first = (time.perf_counter() - t0) / len(sample)
            if thinned and len(paths) <= 8:  # every worker builds its own cluster tiles
                for _ in range(6):
                    for path in paths:
                        server.get(path)
            run = wrk(server, tmp, paths, seconds)
            bad = run["errors"] + run["status"]
            kb = [b / 1024 for b in got]
            line = (f"{tag} z={z:<2}  {run['rps']:,.1f} tiles/s over {len(paths):,} tiles "
                    f"(wrk -t1 -c8 {seconds} s, median {run['p50_us'] / 1000:.1f} ms, p99 "
                    f"{run['p99_us'] / 1000:.1f} ms{f', {bad} errors' if bad else ''}); "
                    f"{len(sample)} fetched one by one first (cold): {first * 1000:.0f} ms "
                    f"each, size median {statistics.median(kb):.1f} kB, max {max(kb):.1f} kB, "
                    f"{thinned} thinned to clusters, {empty} empty")
            if z == 4:
                ok = max(kb) <= TARGET_Z4_KB
                line += f" (target <= {TARGET_Z4_KB} kB: {'met' if ok else 'NOT met'})"
            say(line)
        after = max(vm_hwm_mb(pid) for pid in server.workers())
        anon = max(status_mb(pid, "RssAnon") for pid in server.workers())
        files = max(status_mb(pid, "RssFile") for pid in server.workers())
        say(f"{tag} memory gunicorn worker peak RSS {after:.0f} MB (at start {before:.0f} "
            f"MB); now {anon:.0f} MB private + {files:.0f} MB of mapped files (libraries; "
            "on SpatiaLite also the memory-mapped database, shared and reclaimable)")
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venues", type=int, default=1_000_000)
    ap.add_argument("--backends", default="spatialite,postgis")
    ap.add_argument("--seconds", type=int, default=10, help="wrk run length per zoom")
    ap.add_argument("--keep", action="store_true",
                    help="keep the loaded databases and reuse them on the next --keep run")
    args = ap.parse_args()
    names = [b.strip() for b in args.backends.split(",")]
    for missing in [b for b in names if b not in ("spatialite", "postgis")]:
        ap.error(f"unknown backend {missing!r}")
    if shutil.which("wrk") is None:
        ap.error("wrk is not on PATH")
    started = dt.datetime.now()
    say(f"# voicemap vector tiles benchmark {started:%Y-%m-%d %H:%M}, {versions()}")
    say(f"# {args.venues:,} venues uniform in {AREA}; tiles WebMercatorQuad, at most "
        f"{tiles.MAX_FEATURES} venues a tile, else {tiles.CLUSTER_GRID}x{tiles.CLUSTER_GRID} "
        "clusters; nginx in front of gunicorn (2 sync workers)")
    tag_id = "keep" if args.keep else str(os.getpid())
    reg = Registry(args.venues)
    to_drop: list[tuple[str, object]] = []
    try:
        for backend in names:
            tag = f"[{backend:<10} N={args.venues:>9,}]"
            with tempfile.TemporaryDirectory(prefix="voicemap-bench-tiles-") as tmpdir:
                t0 = time.perf_counter()
                if backend == "postgis":
                    name = f"voicemap_bench_tiles_{tag_id}_{args.venues}"
                    to_drop.append(("postgis", name))
                    url = load_postgis(reg, name, args.keep)
                else:
                    path = (Path(tempfile.gettempdir()) / "voicemap_bench"
                            / f"tiles_{tag_id}_{args.venues}.sqlite")
                    to_drop.append(("spatialite", path))
                    url = load_spatialite(reg, path, args.keep)
                say(f"{tag} load  {args.venues:,} venues ready in "
                    f"{time.perf_counter() - t0:.1f} s")
                bench_backend(url, Path(tmpdir), args.seconds, tag)
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
        out = OUT_DIR / f"tiles-{started:%Y-%m-%d}.txt"
        out.write_text("\n".join(LINES) + "\n", encoding="utf-8")
        print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
