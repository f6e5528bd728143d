#!/usr/bin/env python
"""Play counts benchmark: the cost of the per-play write (the player's beacon).

    .venv/bin/python bench/bench_plays.py [--seconds 5] [--connections 8]
        [--backends spatialite,postgis]

The real app under bare gunicorn (2 sync workers) on each backend; wrk -t1 -c8 for N
seconds against ``POST /api/clips/c1/played`` (one upsert of the same row, the worst case:
every play contends for one row) and, for comparison, the read ``GET /api/clips/status``
of the same clip. Prints requests/s, latency and CPU ms per request of each, and checks
that the table counted every 204 answer wrk saw (plus at most one request per connection
still in flight when wrk stopped, which the server answered after wrk stopped counting).

Output also goes to bench/output/plays-<date>.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import LINES, Server, say  # noqa: E402 (bench/ is on sys.path when run as a script)
from conftest import throwaway_postgis  # noqa: E402
from helpers import feature, load  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from voicemap import create_app, db  # noqa: E402
from voicemap.models import Clip, PlayCount  # noqa: E402

OUT = Path(__file__).resolve().parent / "output"
POST_LUA = 'wrk.method = "POST"\n'


def prepare(url: str) -> None:
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": True})
    db.init_schema(app.extensions["voicemap.engine"])
    load(app, [feature("museum-a", 116.34, 39.90)])
    now = dt.datetime.now(dt.UTC)
    with app.app_context(), db.session_scope() as s:
        s.add(Clip(id="c1", venue_id="museum-a", lang="zh", narrator_name="x", narrator_age=9,
                   transcript="x", status="published", duration_ms=1000, loudness_lufs=-16,
                   true_peak_dbtp=-1, peaks="[]", audio_sha256="a" * 64,
                   original_sha256="b" * 64, original_format="wav", consent_by="p",
                   consent_at=now))
    app.extensions["voicemap.engine"].dispose()


def counted(url: str) -> int:
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": True})
    with app.app_context():
        n = db.get_session().execute(select(func.coalesce(func.sum(PlayCount.count), 0))
                                     ).scalar_one()
    app.extensions["voicemap.engine"].dispose()
    return int(n)


def wrk(server: Server, path: str, seconds: int, conns: int, lua: Path | None) -> dict:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency"]
    if lua:
        cmd += ["-s", str(lua)]
    cpu0 = server.cpu_seconds()
    out = subprocess.run([*cmd, server.base + path], capture_output=True, text=True,
                         check=True).stdout
    cpu = server.cpu_seconds() - cpu0
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {"requests": total, "ok": total - (int(bad.group(1)) if bad else 0),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": ms("50%"), "p99": ms("99%"), "cpu_ms": 1000 * cpu / max(total, 1),
            "socket_errors": errors.group(0) if errors else ""}


def bench(url: str, tag: str, tmp: Path, seconds: int, conns: int) -> None:
    lua = tmp / "post.lua"
    lua.write_text(POST_LUA)
    server = Server(url, tmp, direct=True)
    try:
        read = wrk(server, "/api/clips/status?ids=c1", seconds, conns, None)
        before = counted(url)
        write = wrk(server, "/api/clips/c1/played", seconds, conns, lua)
        after = counted(url)
    finally:
        server.stop()
    for name, r in (("status GET", read), ("played POST", write)):
        say(f"{tag:10} {name:12} {r['rps']:8.0f} req/s  p50 {r['p50']:6.1f} ms  p99 "
            f"{r['p99']:6.1f} ms  cpu {r['cpu_ms']:5.2f} ms/req  {r['socket_errors']}")
    # wrk stops counting the requests still in flight when its time is up (at most one per
    # connection); the server still answers them, so the table may hold up to that many more.
    extra = after - before - write["ok"]
    fine = write["ok"] == write["requests"] and 0 <= extra <= conns
    say(f"{tag:10} counted {after - before} plays for {write['ok']} answers 204 seen by wrk "
        f"+ {extra} in flight at its end (<= {conns} connections: "
        f"{'ok' if fine else 'MISMATCH'})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--backends", default="spatialite,postgis")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="voicemap_bench_plays") as tmp_name:
        tmp = Path(tmp_name)
        for backend in args.backends.split(","):
            if backend == "spatialite":
                url = f"sqlite:///{tmp / 'plays.sqlite'}"
                prepare(url)
                bench(url, backend, tmp, args.seconds, args.connections)
            else:
                with throwaway_postgis("voicemap_bench_plays") as url:
                    prepare(url)
                    bench(url, backend, tmp, args.seconds, args.connections)
    OUT.mkdir(exist_ok=True)
    (OUT / f"plays-{dt.date.today()}.txt").write_text("\n".join(LINES) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
