#!/usr/bin/env python
"""Operations benchmark: serving a clip from an object store, and backup and restore.

    .venv/bin/python bench/bench_ops.py [--venues 1000000] [--clips 1000] [--seconds 6]
        [--backends spatialite,postgis] [--skip-serve] [--skip-backup]

  serve    one published clip (a 60 s spoken recording through the real pipeline) served by
           gunicorn (2 sync workers) from the local media directory and from SeaweedFS's S3
           gateway, in one run: wrk -t1 -c8 requests/s (A B B A) and the median time to
           first byte of 50 sequential requests (curl)
  backup   ``voicemap backup`` of N venues and C clips (each clip two media files of 64 kB
           of random bytes, stored through the media store: the archive's cost is bytes, not
           audio), then ``backup --verify`` and ``voicemap restore`` into an empty database
           and store: wall time and the command's peak RSS (GNU time)

Output also goes to bench/output/ops-<date>.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the SeaweedFS server and the speech maker

import bench_registry as reg  # noqa: E402
from common import LINES, free_port, say  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from voicemap import create_app, db  # noqa: E402
from voicemap.models import Clip  # noqa: E402
from voicemap.storage import open_store  # noqa: E402

BIN = Path(sys.executable).parent
OUT_DIR = ROOT / "bench" / "output"


# --- serving a clip --------------------------------------------------------------------------


def long_speech(directory: Path, seconds: int = 60) -> Path:
    """About ``seconds`` of real speech (espeak-ng, the test phrase over and over)."""
    from helpers import speech

    one = speech(directory, "one.wav", "en")
    out = directory / "long.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop", "-1",
                    "-i", str(one), "-t", str(seconds), "-c:a", "aac", str(out)], check=True)
    return out


def serve_from(config: dict, tmp: Path, recording: Path) -> tuple[subprocess.Popen, str, str]:
    """A SpatiaLite database with one published clip in the given store, and gunicorn
    serving it; the process, its base URL and the clip's audio path."""
    from helpers import feature, load

    from voicemap import audio, clips
    from voicemap.storage import media_store

    url = f"sqlite:///{tmp / 'serve.sqlite'}"
    settings = {"DATABASE_URL": url, "SECRET_KEY": "bench", **config}
    app = create_app(settings)
    db.init_schema(app.extensions["voicemap.engine"])
    load(app, [feature("museum-a", 116.39, 39.91)])
    fields = clips.check_fields({"lang": "en", "narrator_name": "Lily", "narrator_age": "9",
                                 "transcript": "Bench.", "consent": "true",
                                 "consent_by": "Parent"})
    with app.app_context():
        clip = clips.attach(db.get_session(), media_store(), "museum-a", recording, fields,
                            manager=None, limits=audio.Limits(), status="published")
    app.extensions["voicemap.engine"].dispose()
    port = free_port()
    env = {**os.environ, **{f"VOICEMAP_{k}": str(v) for k, v in settings.items()}}
    log = open(tmp / f"gunicorn-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "--workers", "2", "--worker-class", "sync", "--bind",
         f"127.0.0.1:{port}", "--no-control-socket", "--log-level", "warning",
         "voicemap:create_app()"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while subprocess.run(["curl", "-sf", "-o", "/dev/null", base + "/api/version"]).returncode:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"gunicorn did not start: {log.name}")
        time.sleep(0.2)
    return proc, base, f"/audio/{clip.id}.mp3"


def wrk_rps(url: str, seconds: int) -> tuple[float, int]:
    out = subprocess.run(["wrk", "-t1", "-c8", f"-d{seconds}s", "--timeout", "10s", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(next(ln for ln in out.splitlines() if ln.startswith("Requests/sec"))
                .split()[-1])
    bad = sum(int(ln.split()[-1]) for ln in out.splitlines()
              if ln.strip().startswith("Non-2xx"))
    return rps, bad


def ttfb_ms(url: str, n: int = 50) -> float:
    times = []
    for _ in range(n):
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_starttransfer}",
                              url], capture_output=True, text=True, check=True).stdout
        times.append(float(out) * 1000)
    return statistics.median(times)


def bench_serve(tmp: Path, seconds: int) -> None:
    from seaweed import SeaweedServer

    recording = long_speech(tmp / "speech")
    weed = SeaweedServer(_mkdir(tmp / "weed"))
    servers = {}
    try:
        weed.create_bucket("bench")
        servers["local"] = serve_from({"MEDIA_DIR": str(tmp / "media")}, _mkdir(tmp / "l"),
                                      recording)
        servers["s3"] = serve_from({"MEDIA_URL": "s3://bench/media",
                                    "S3_ENDPOINT_URL": weed.endpoint,
                                    "MEDIA_SCRATCH_DIR": str(tmp / "scratch")},
                                   _mkdir(tmp / "s"), recording)
        sizes = {k: len(subprocess.run(["curl", "-sf", base + path], capture_output=True,
                                       check=True).stdout) for k, (_, base, path) in
                 servers.items()}
        assert sizes["local"] == sizes["s3"] > 100_000, sizes
        for _name, (_, base, path) in servers.items():  # warm-up
            wrk_rps(base + path, 1)
        rps: dict[str, list[float]] = {"local": [], "s3": []}
        half = max(1, seconds // 2)
        for name in ("local", "s3", "s3", "local"):
            _, base, path = servers[name]
            value, bad = wrk_rps(base + path, half)
            assert bad == 0, f"{name}: {bad} non-2xx"
            rps[name].append(value)
        ttfb = {name: ttfb_ms(base + path) for name, (_, base, path) in servers.items()}
        for name in ("local", "s3"):
            say(f"serve {name:<5} /audio/<id>.mp3 ({sizes[name] / 1024:.0f} kB): "
                f"{statistics.mean(rps[name]):,.0f} req/s, time to first byte "
                f"{ttfb[name]:.1f} ms (median of 50)")
        ratio = statistics.mean(rps["s3"]) / statistics.mean(rps["local"])
        say(f"serve s3/local: {ratio:.2f}x requests/s, TTFB +{ttfb['s3'] - ttfb['local']:.1f} ms")
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait(30)
        weed.stop()


# --- backup and restore ----------------------------------------------------------------------


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def add_clips(url: str, media: Path, n: int, tmp: Path) -> None:
    """n clips on the first venues, each with its own two files of random bytes."""
    engine = db.make_engine(url)
    store = open_store({"MEDIA_DIR": str(media)}, engine)
    rows = []
    blob = tmp / "blob"
    for i in range(n):
        shas = []
        for kind in ("published", "originals"):
            blob.write_bytes(secrets.token_bytes(64 * 1024))
            shas.append(store.put(kind, blob)[0])
        rows.append({"id": f"{i:016x}", "venue_id": f"bench-{i:07d}", "lang": "zh",
                     "narrator_name": "小雨", "narrator_age": 9, "synthetic": False,
                     "transcript": "欢迎", "status": "published", "duration_ms": 4000,
                     "loudness_lufs": -16.0, "true_peak_dbtp": -1.5, "peaks": "[0.5]",
                     "audio_sha256": shas[0], "original_sha256": shas[1],
                     "original_format": "mp3", "consent_by": "Parent",
                     "consent_at": dt.datetime.now(dt.UTC),
                     "uploaded_at": dt.datetime.now(dt.UTC)})
    with db.writer(engine).begin() as conn:
        conn.execute(insert(Clip), rows)
    engine.dispose()


def measured(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``voicemap ARGS``: wall seconds, peak RSS in MB, its output."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        t0 = time.perf_counter()
        result = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name,
                                 str(BIN / "voicemap"), *args], capture_output=True,
                                text=True, env={**os.environ, **env})
        elapsed = time.perf_counter() - t0
        if result.returncode != 0:
            raise RuntimeError(f"voicemap {' '.join(args)}: {result.stderr[-800:]}")
        return elapsed, int(rss.read().split()[-1]) / 1024, result.stdout + result.stderr


def bench_backup(tmp: Path, backend: str, n_venues: int, n_clips: int) -> None:
    import psycopg

    registry = reg.Registry(n_venues)
    names = []
    if backend == "postgis":
        names = ["voicemap_bench_ops_src", "voicemap_bench_ops_dst"]
        url = reg.load_postgis(registry, names[0], reuse=False)
        with psycopg.connect(reg.ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{names[1]}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{names[1]}"')
        target = reg.pg_url(names[1])
    else:
        url = reg.load_spatialite(registry, tmp / "src.sqlite", reuse=False)
        target = f"sqlite:///{tmp / 'dst.sqlite'}"
    try:
        add_clips(url, tmp / "media-src", n_clips, tmp)
        archive = tmp / f"{backend}.tar"
        src_env = {"VOICEMAP_DATABASE_URL": url, "VOICEMAP_MEDIA_DIR": str(tmp / "media-src"),
                   "VOICEMAP_SECRET_KEY": "bench"}
        t, rss, _ = measured(["backup", "-o", str(archive)], src_env)
        size = archive.stat().st_size / 1e6
        say(f"backup  {backend:<10} {n_venues:,} venues, {n_clips:,} clips: {t:.1f} s, "
            f"peak {rss:.0f} MB, archive {size:,.0f} MB")
        t, rss, _ = measured(["backup", "--verify", str(archive)], src_env)
        say(f"verify  {backend:<10} {t:.1f} s, peak {rss:.0f} MB")
        dst_env = {"VOICEMAP_DATABASE_URL": target, "VOICEMAP_SECRET_KEY": "bench",
                   "VOICEMAP_MEDIA_DIR": str(tmp / "media-dst")}
        t, rss, out = measured(["restore", str(archive)], dst_env)
        say(f"restore {backend:<10} {t:.1f} s, peak {rss:.0f} MB ({out.strip()[:120]})")
        engine = db.make_engine(target)
        with engine.connect() as conn:
            venues = conn.exec_driver_sql("SELECT count(*) FROM venues").scalar()
            clips = conn.exec_driver_sql("SELECT count(*) FROM clips").scalar()
        engine.dispose()
        files = sum(1 for p in (tmp / "media-dst").rglob("*") if p.is_file()
                    and "locks" not in p.parts)
        ok = venues == n_venues and clips == n_clips and files == 2 * n_clips
        say(f"check   {backend:<10} restored {venues:,} venues, {clips:,} clips, {files:,} "
            f"files: {'complete' if ok else 'INCOMPLETE'}")
    finally:
        if names:
            with psycopg.connect(reg.ADMIN_URL, autocommit=True) as admin:
                for name in names:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venues", type=int, default=1_000_000)
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--backends", default="spatialite,postgis")
    parser.add_argument("--skip-serve", action="store_true")
    parser.add_argument("--skip-backup", action="store_true")
    args = parser.parse_args()
    say(f"bench_ops {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="voicemap-bench-ops-") as tmp_name:
        tmp = Path(tmp_name)
        if not args.skip_serve:
            bench_serve(_mkdir(tmp / "serve"), args.seconds)
        if not args.skip_backup:
            for backend in args.backends.split(","):
                bench_backup(_mkdir(tmp / backend), backend, args.venues, args.clips)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / f"ops-{dt.date.today()}.txt").write_text("\n".join(LINES) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
