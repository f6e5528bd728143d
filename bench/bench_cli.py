"""The command line's peak memory: ``voicemap --help`` and ``voicemap export`` of N venues.

Each command runs as its own process under GNU time (peak RSS of that process alone). The
export writes GeoJSON from a SpatiaLite registry of N venues (the embedded default, made
with bench_registry's synthetic venues and reused from a previous run with --keep); it
streams, so its memory is what the command loads, not what it reads. Target: < 64 MB each
(the GeoJSON export builds no app; --formats also measures CSV, which loads pyproj, and
GeoPackage and Shapefile, which load GDAL and pandas: no target for those).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bench_registry import TIME, Registry, load_spatialite, met, run_measured, say, versions

TARGET_MB = 64
NAMES = {"geojson": "GeoJSON", "csv": "CSV", "gpkg": "GeoPackage", "shp": "Shapefile"}
VOICEMAP = Path(sys.executable).parent / "voicemap"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venues", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true",
                    help="keep the registry file and reuse it on the next --keep run")
    ap.add_argument("--formats", default="geojson",
                    help="comma-separated export formats to measure: geojson (default), csv, "
                         "gpkg, shp")
    args = ap.parse_args()
    if shutil.which(TIME) is None:
        ap.error(f"{TIME} is not on PATH")
    say(f"# voicemap CLI memory benchmark, {versions()}")
    work = Path(tempfile.gettempdir()) / "voicemap_bench"
    path = work / (f"cli-{args.venues}.sqlite" if args.keep else f"cli-{args.venues}-tmp.sqlite")
    url = load_spatialite(Registry(args.venues), path, reuse=args.keep)
    with tempfile.TemporaryDirectory(prefix="voicemap-bench-") as tmpdir:
        seconds, mb = run_measured([str(VOICEMAP), "--help"], capture_output=True)
        say(f"[cli] voicemap --help: {mb:.0f} MB peak RSS, {seconds:.2f} s "
            f"(target < {TARGET_MB} MB: {met(mb < TARGET_MB)})")
        for fmt in args.formats.split(","):
            out = Path(tmpdir) / f"venues.{fmt}"
            seconds, mb = run_measured([str(VOICEMAP), "--database-url", url, "export",
                                        "--format", fmt, "-o", str(out)], capture_output=True)
            size = sum(p.stat().st_size for p in Path(tmpdir).glob("venues.*")) / 1e6
            target = (f"target < {TARGET_MB} MB: {met(mb < TARGET_MB)}" if fmt == "geojson"
                      else "no target")
            say(f"[cli] voicemap export (SpatiaLite, {args.venues:,} venues, "
                f"{NAMES.get(fmt, fmt)}, {size:.0f} MB file): {mb:.0f} MB peak RSS, "
                f"{seconds:.1f} s ({target})")
            for part in Path(tmpdir).glob("venues.*"):
                part.unlink()
    if not args.keep:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
