"""Activities: occurrence listings and iCalendar feeds at a city's scale, on both backends.

    .venv/bin/python bench/bench_activities.py                 # 2,000 activities, both backends
    .venv/bin/python bench/bench_activities.py --activities 200 --requests 10    # quick

Loads synthetic venues and activities (half weekly series of 12 to 26 weeks, half single
events, spread over a year from 2027-01-01) into a throwaway database per backend, serves
the app as ``scripts/run`` does (nginx in front of gunicorn) and times, sequentially, with
a warm-up request first:

- ``list day`` / ``list month``: ``GET /api/activities`` for one day and for 30 days;
- ``feed``: ``GET /activities.ics`` for the year (every activity, RRULEs unexpanded);
- ``version``: ``GET /api/version`` (no database), the floor of this run on this machine.

Targets: day ≤ 50 ms, month ≤ 300 ms, feed ≤ 2 s median at 2,000 activities. Lines are also
written to ``bench/output/activities-<date>.txt``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import LINES, Server, say  # noqa: E402 (bench/ is on sys.path when run as a script)
from conftest import throwaway_postgis  # noqa: E402
from helpers import random_features  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from voicemap import activities, create_app, db, venues  # noqa: E402
from voicemap.config import BEIJING_SERVICE_AREA  # noqa: E402
from voicemap.exchange import check  # noqa: E402
from voicemap.models import Activity  # noqa: E402

OUT = Path(__file__).resolve().parent / "output"


def load(url: str, n_venues: int, n_acts: int, seed: int = 7) -> None:
    """Venues through the registry's upsert; activities as rows made by the service's rules."""
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    db.init_schema(app.extensions["voicemap.engine"])
    feats = random_features(n_venues, seed)
    rng = random.Random(seed)
    first = dt.datetime(2027, 1, 1, tzinfo=activities.TZ)
    rows = []
    for i in range(n_acts):
        start = first + dt.timedelta(days=rng.randrange(365), hours=rng.randrange(8, 19))
        weekly = i % 2 == 0
        body = {"title_zh": f"活动{i}", "title_en": f"Activity {i}",
                "start": start.isoformat(), "end": (start + dt.timedelta(hours=1)).isoformat(),
                "rrule": f"FREQ=WEEKLY;COUNT={rng.randrange(12, 27)}" if weekly else None,
                "min_age": rng.choice([None, 3, 6]), "max_age": rng.choice([None, 12, 17]),
                "price": rng.choice([0, 0, 30])}
        fields = activities.check(body)
        act = Activity(venue_id=feats[i % n_venues]["properties"]["id"], sequence=0)
        activities._apply(act, fields)
        row = {c.key: getattr(act, c.key) for c in Activity.__table__.columns
               if c.key not in ("id", "created_by")}
        rows.append(row | {"created_at": act.updated_at})
    with app.app_context(), db.session_scope() as s:
        venues.upsert(s, check(feats, BEIJING_SERVICE_AREA).records)
        s.execute(insert(Activity), rows)
    app.extensions["voicemap.engine"].dispose()


def timed(base: str, path: str, n: int) -> tuple[float, float, int]:
    """Median and p90 ms of ``n`` sequential GETs after one warm-up; the body's size."""
    with urllib.request.urlopen(base + path, timeout=60) as r:
        size = len(r.read())
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        with urllib.request.urlopen(base + path, timeout=60) as r:
            r.read()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))], size


def bench(url: str, tag: str, tmp: Path, n_acts: int, n: int) -> None:
    server = Server(url, tmp)
    try:
        cases = {
            "version": ("/api/version", 0),  # no database: the machine's floor this run
            "list day": ("/api/activities?from=2027-06-05&to=2027-06-05", 50),
            "list month": ("/api/activities?from=2027-06-01&to=2027-06-30", 300),
            "feed": ("/activities.ics?from=2027-01-01&to=2027-12-31", 2000),
        }
        for name, (path, target) in cases.items():
            med, p90, size = timed(server.base, path, n)
            ok = "met" if n_acts < 2000 or med <= target else "MISSED"
            if not target:
                say(f"{tag:10} {name:10} {'':>6}             median {med:7.1f} ms  p90 "
                    f"{p90:7.1f} ms")
                continue
            say(f"{tag:10} {name:10} {n_acts:>6} activities: median {med:7.1f} ms  p90 "
                f"{p90:7.1f} ms  {size / 1024:8.1f} KiB  (target ≤ {target} ms at 2,000: "
                f"{ok if n_acts >= 2000 else 'n/a'})")
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--activities", type=int, default=2000)
    ap.add_argument("--venues", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--backends", default="spatialite,postgis")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="voicemap_bench_act") as tmp_name:
        tmp = Path(tmp_name)
        for backend in args.backends.split(","):
            if backend == "spatialite":
                url = f"sqlite:///{tmp / 'act.sqlite'}"
                load(url, args.venues, args.activities)
                bench(url, backend, tmp, args.activities, args.requests)
            else:
                with throwaway_postgis("voicemap_bench_act") as url:
                    load(url, args.venues, args.activities)
                    bench(url, backend, tmp, args.activities, args.requests)
    OUT.mkdir(exist_ok=True)
    (OUT / f"activities-{dt.date.today()}.txt").write_text("\n".join(LINES) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
