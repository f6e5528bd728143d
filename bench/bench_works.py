"""The public works: gallery API pages, the map layer's data and the gallery page at 1,000
and 10,000 works, on SpatiaLite and PostGIS.

    .venv/bin/python bench/bench_works.py [--sizes 1000,10000] [--backends spatialite,postgis]
        [--repeat 30]

Rows only (no files: these paths read rows, never media bytes); 80% of the works are public
(approved, public consent, not flagged), the rest pending, flagged or private, so the
public condition has something to exclude. Requests go through the app in-process (Flask's
test client), so the figures are the app's and the database's time without HTTP;
`/api/version` (no database) is the floor, measured in the same run. Prints the median and
p95 of each path and its body size as sent to a client taking gzip.

Targets at 10,000 works: a page of `/api/works` (filtered or not) within 10x the
`/api/version` floor; `/api/map/works` (every public work with a point: the map layer's one
request) under 200 kB as sent.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
from geoalchemy2 import WKTElement
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voicemap import create_app, db  # noqa: E402
from voicemap import works as service  # noqa: E402
from voicemap.models import Work, utcnow  # noqa: E402

ADMIN_URL = os.environ.get("VOICEMAP_BENCH_POSTGRES_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
PATHS = ("/api/version", "/api/works", "/api/works?kind=painting&age_group=7-9&page=3",
         "/api/map/works", "/works?lang=en")


def fill(app, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    now = utcnow()
    with app.app_context():
        s = db.get_session()
        service.create_campaign(s, "bench", title_zh="基准", title_en="Bench",
                                opens=now - timedelta(days=1), closes=now + timedelta(days=9),
                                status="open")
        batch = []
        for i in range(n):
            roll = rng.random()
            lon, lat = service.coarsen(rng.uniform(116.1, 116.7), rng.uniform(39.75, 40.1))
            age = rng.randint(3, 17)
            batch.append(Work(
                id=uuid.uuid4().hex[:16], campaign_id="bench",
                kind=rng.choice(service.KINDS), title=f"Work {i}", narrator_name="Lily",
                narrator_age=age, age_group=next(g for g in service.DEFAULT_AGE_GROUPS
                                                 if int(g.split("-")[0]) <= age
                                                 <= int(g.split("-")[1])),
                story="A story about the city. " * 8,
                geom=WKTElement(f"POINT({lon} {lat})", srid=4326),
                status="approved" if roll < 0.9 else "pending", flagged=0.9 <= roll < 0.93,
                consent_judging=True, consent_public=roll < 0.8 or roll >= 0.93,
                consent_by="Guardian", guardian_contact="g@example.com", consent_at=now,
                withdraw_hash="0" * 64, submitted_at=now - timedelta(seconds=i)))
            if len(batch) == 2000:
                s.add_all(batch)
                s.commit()
                batch = []
        s.add_all(batch)
        s.commit()
        if s.get_bind().dialect.name == "postgresql":
            s.connection().exec_driver_sql("ANALYZE works")  # as autovacuum would
            s.commit()


def measure(app, repeat: int) -> list[tuple[str, float, float, int]]:
    client = app.test_client()
    out = []
    for path in PATHS:
        client.get(path)  # warm
        times, size = [], 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            r = client.get(path, headers={"Accept-Encoding": "gzip"})
            times.append((time.perf_counter() - t0) * 1000)
            size = len(r.data)
            assert r.status_code == 200, (path, r.status_code)
        times.sort()
        out.append((path, statistics.median(times), times[int(len(times) * 0.95) - 1], size))
    return out


def run(backend: str, n: int, repeat: int, tmp: Path) -> None:
    name = None
    if backend == "spatialite":
        url = f"sqlite:///{tmp / f'works-{n}.sqlite'}"
    else:
        name = f"voicemap_bench_works_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg",
                                      database=name).render_as_string(hide_password=False)
    app = create_app({"DATABASE_URL": url, "MEDIA_DIR": str(tmp / "media"),
                      "SECRET_KEY": "bench", "SWEEP_TEMPORARIES": False})
    try:
        db.init_schema(app.extensions["voicemap.engine"])
        fill(app, n)
        for path, median, p95, size in measure(app, repeat):
            print(f"works {backend:10s} n={n:<6d} {path:48s} median {median:7.1f} ms  "
                  f"p95 {p95:7.1f} ms  {size / 1024:8.1f} kB", flush=True)
    finally:
        app.extensions["voicemap.engine"].dispose()
        if name:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--backends", default="spatialite,postgis")
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="voicemap_bench_works") as tmp:
        for backend in args.backends.split(","):
            for n in map(int, args.sizes.split(",")):
                run(backend, n, args.repeat, Path(tmp))


if __name__ == "__main__":
    main()
