#!/usr/bin/env python
"""The map's search box: ``venues.search`` (GET /api/search) at 121 to 100,000 venues.

    .venv/bin/python bench/bench_search.py [--sizes 121,10000,100000] [--queries 200]

For each size N, a SpatiaLite file holds the real registry (N = 121) or N synthetic venues
whose Chinese names are made of syllables from the real ones. It prints:

  index   building the search index once (every name's pinyin with pypinyin): seconds,
          and this process's peak memory after it (VmHWM)
  query   ``venues.search`` with the index built, over a mix of pinyin, initials,
          Chinese and English queries: median and p99 milliseconds per query
  rebuild the index again after one venue's name changed (the other names' pinyin kept)

Target: a query under 50 ms at 10,000 venues (a keystroke's debounce is 150 ms); the index
is rebuilt only when the registry changes (its row count or last ``updated_at``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import hwm_mb, met, say  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ["gugong", "bowuguan", "gu gong", "ggbwy", "故宫", "博物馆", "palace", "park",
           "beijing", "tiantan", "zz", "kexue", "Museum of", "gongyuan"]


def synthetic(n: int, real: list[dict]) -> list[dict]:
    from helpers import feature

    rng = random.Random(n)
    chars = [c for f in real for c in f["properties"]["name_zh"] if "\u4e00" <= c <= "\u9fff"]
    words = [w for f in real for w in f["properties"]["name_en"].split()]
    cats = [f["properties"]["category"] for f in real]
    out = []
    for i in range(n):
        zh = "".join(rng.choice(chars) for _ in range(rng.randint(3, 12)))
        en = " ".join(rng.choice(words) for _ in range(rng.randint(2, 7)))
        out.append(feature(f"s{i:06d}", round(rng.uniform(116.1, 116.7), 6),
                           round(rng.uniform(39.75, 40.1), 6), rng.choice(cats),
                           name_zh=zh, name_en=en))
    return out


def run(n: int, queries: int) -> None:
    from helpers import load

    from voicemap import create_app, db, venues

    real = json.loads((ROOT / "data" / "venues.geojson").read_text(encoding="utf-8"))["features"]
    features = real if n <= len(real) else synthetic(n, real)
    with tempfile.TemporaryDirectory(prefix="voicemap-bench-search-") as tmp:
        app = create_app({"DATABASE_URL": f"sqlite:///{tmp}/v.sqlite", "MEDIA_DIR": tmp,
                          "SECRET_KEY": "bench", "PRELOAD": False})
        db.init_schema(app.extensions["voicemap.engine"])
        for start in range(0, len(features), 5000):
            load(app, features[start:start + 5000])
        with app.app_context(), db.engine().connect() as conn:
            t0 = time.perf_counter()
            venues.search_index(conn)
            built = time.perf_counter() - t0
            say(f"search N={len(features):>7,} index  {built:7.2f} s  peak {hwm_mb():6.0f} MB")
            times = []
            for i in range(queries):
                q = QUERIES[i % len(QUERIES)]
                t0 = time.perf_counter()
                venues.search(conn, q, 10)
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            median, p99 = statistics.median(times), times[int(len(times) * 0.99) - 1]
            target = f"  (< 50 ms: {met(median < 50)})" if len(features) == 10_000 else ""
            say(f"search N={len(features):>7,} query  median {median:6.2f} ms  "
                f"p99 {p99:6.2f} ms{target}")
        changed = dict(features[0], properties={**features[0]["properties"],
                                                "name_zh": "新的名字博物馆"})
        load(app, [changed])
        with app.app_context(), db.engine().connect() as conn:
            t0 = time.perf_counter()
            venues.search_index(conn)
            say(f"search N={len(features):>7,} rebuild after one venue changed  "
                f"{time.perf_counter() - t0:6.2f} s")
        app.extensions["voicemap.engine"].dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="121,10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        run(n, args.queries)


if __name__ == "__main__":
    main()
