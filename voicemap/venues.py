"""Registry queries: nearest-k, search and bounding box, one venue, counts, upsert, import."""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geoalchemy2 import WKTElement
from sqlalchemy import Connection, Engine, bindparam, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from . import backends, categories, exchange, feed, geo, policy
from .errors import BadRequest, ImportRejected, NotFound
from .feed import CLIP_COUNT, EXTRA, check_categories, iter_features  # noqa: F401 (re-exported)
from .models import VENUE_FIELDS, Clip, Manager, Venue, utcnow

MAX_K = 100


def nearest(session: Session | Connection | Engine, lon: float, lat: float, *, k: int = 5,
            category: Iterable[str] | None = None, max_distance_m: float | None = None,
            datum: str = "wgs84") -> list[str]:
    """GeoJSON Feature texts of the k nearest venues by geodesic distance, nearest first.

    The query point is in ``datum`` (WGS-84 or GCJ-02); results are always WGS-84, each
    with ``properties.distance_m`` (metres on the WGS-84 ellipsoid, to 0.1 m). Given an
    engine, or a session with no transaction open, the query reads committed data in one
    statement outside any transaction; given a connection or a session in a transaction,
    it runs in that transaction.
    """
    geo.check_lon_lat(lon, lat)
    if not 1 <= k <= MAX_K:
        raise BadRequest(f"k must be between 1 and {MAX_K}, got {k}", param="k")
    if max_distance_m is not None and not (math.isfinite(max_distance_m)
                                           and max_distance_m > 0):
        raise BadRequest("max_distance_m must be a positive number of metres",
                         param="max_distance_m")
    cats = check_categories(category)
    lon, lat = geo.to_wgs84(lon, lat, datum)
    backend = backends.select(session)
    bind = session
    if isinstance(session, Session) and not session.in_transaction():
        bind = session.get_bind()
    if isinstance(bind, Engine):
        # Nothing to see from an open transaction: one statement on a connection that
        # autocommits, with no transaction of the session's to begin and roll back.
        return backend.nearest_autocommit(bind, lon, lat, k, cats, max_distance_m, EXTRA)
    conn = _connection(session)
    return backend.nearest(conn, lon, lat, k, cats, max_distance_m, EXTRA)


def get_feature(session: Session | Connection, venue_id: str) -> str:
    """One venue as GeoJSON Feature text.

    :raises NotFound: no venue has this id.
    """
    found = list(iter_features(_connection(session), ids=[venue_id]))
    if not found:
        raise NotFound(f"no venue with id {venue_id!r}")
    return found[0]


def get(session: Session, venue_id: str) -> Venue:
    """The venue row, or NotFound."""
    venue = session.get(Venue, venue_id)
    if venue is None:
        raise NotFound(f"no venue with id {venue_id!r}")
    return venue


def managed_by(session: Session, manager: Manager) -> list[Venue]:
    """The venues this manager manages (every venue for an administrator), by category."""
    if policy.is_admin(manager):
        return list(session.execute(select(Venue).order_by(Venue.category, Venue.id)).scalars())
    return sorted(manager.venues, key=lambda v: (v.category, v.id))


@dataclass
class ManagedPage:
    """One page of the venues a manager manages, after search and filters."""

    venues: list[Venue]
    total: int  # matching venues, all pages
    page: int
    pages: int


def _managed_stmt(manager: Manager):
    stmt = select(Venue)
    if not policy.is_admin(manager):
        stmt = stmt.where(Venue.id.in_([v.id for v in manager.venues]))
    return stmt


def search_managed(session: Session, manager: Manager, *, q: str = "",
                   district: str | None = None, category: str | None = None, page: int = 1,
                   per_page: int = 20) -> ManagedPage:
    """The venues this manager manages (every venue for an administrator) whose Chinese or
    English name contains ``q`` (case-insensitive), in ``district`` and ``category`` when
    given, by category then id; page ``page`` (from 1, clamped to the last) of ``per_page``.
    """
    stmt = _managed_stmt(manager)
    q = " ".join(q.split())[:100]
    if q:
        stmt = stmt.where(or_(func.lower(Venue.name_en).contains(q.lower(), autoescape=True),
                              Venue.name_zh.contains(q, autoescape=True),
                              Venue.id == q))
    if district:
        stmt = stmt.where(Venue.district == district)
    if category:
        stmt = stmt.where(Venue.category == category)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    found = session.execute(stmt.order_by(Venue.category, Venue.id)
                            .limit(per_page).offset((page - 1) * per_page)).scalars()
    return ManagedPage(list(found), total, page, pages)


def districts(session: Session, manager: Manager) -> list[str]:
    """The districts of the venues this manager manages, sorted."""
    stmt = _managed_stmt(manager).where(Venue.district.is_not(None))
    sub = stmt.subquery()
    return sorted(session.execute(select(sub.c.district).distinct()).scalars())


def category_counts(session: Session) -> list[dict[str, Any]]:
    """Every category with its labels, colour, venue count and voiced-venue count."""
    counts = dict(session.execute(select(Venue.category, func.count()).group_by(Venue.category))
                  .all())
    voiced = dict(session.execute(
        select(Venue.category, func.count(func.distinct(Venue.id)))
        .join(Clip, Clip.venue_id == Venue.id).where(Clip.status == "published")
        .group_by(Venue.category)).all())
    return [{**c.to_dict(), "count": counts.get(c.id, 0), "voiced": voiced.get(c.id, 0)}
            for c in categories.CATEGORIES]


def dictionary(session: Session | Connection, licence: str | None = None) -> dict[str, Any]:
    """The exports' data dictionary, with the registry's last change (max ``updated_at``)."""
    return feed.dictionary(_connection(session), licence)


def count(session: Session) -> int:
    """How many venues the registry holds."""
    return session.execute(select(func.count()).select_from(Venue)).scalar_one()


def names(session: Session) -> list[dict[str, str]]:
    """Every venue's id and names (``id``, ``name_zh``, ``name_en``), in Chinese name order:
    the choices of a form that names a venue."""
    stmt = select(Venue.id, Venue.name_zh, Venue.name_en).order_by(Venue.name_zh, Venue.id)
    return [dict(row) for row in session.execute(stmt).mappings()]


# --- writing -----------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did: counts, and the problems of the features it refused."""

    total: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    problems: list[exchange.Problem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "skipped": self.skipped,
                "problems": [p.__dict__ for p in self.problems]}


def upsert(session: Session, records: list[dict[str, Any]], report: ImportReport | None = None
           ) -> ImportReport:
    """Insert new venues and update changed ones by id, in the caller's transaction.

    Unchanged venues are left alone (their ``updated_at`` too), so re-importing a file is a
    no-op.
    """
    report = report or ImportReport(total=len(records))
    existing: dict[str, dict[str, Any]] = {}
    ids = [r["id"] for r in records]
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        rows = session.execute(
            select(Venue.id, *[getattr(Venue, f) for f in VENUE_FIELDS],
                   func.ST_X(Venue.geom), func.ST_Y(Venue.geom)).where(Venue.id.in_(chunk)))
        for row in rows:
            values = dict(zip(("id", *VENUE_FIELDS, "lon", "lat"), row, strict=True))
            existing[values["id"]] = values
    now = utcnow()
    inserts, updates = [], []
    for record in records:
        old = existing.get(record["id"])
        if old is not None and _same(old, record):
            report.unchanged += 1
            continue
        row = {f: record.get(f) for f in VENUE_FIELDS}
        row.update(id=record["id"], updated_at=now,
                   geom=WKTElement(f"POINT({record['lon']!r} {record['lat']!r})", srid=4326))
        (updates if old is not None else inserts).append(row)
    for start in range(0, len(inserts), 5000):
        session.execute(insert(Venue), inserts[start:start + 5000])
    if updates:
        # One statement executed for many rows (executemany), not one ORM UPDATE per row:
        # 30,000 changed venues took 150 s that way, holding SQLite's write lock throughout.
        table = Venue.__table__
        stmt = update(table).where(table.c.id == bindparam("b_id")).values(
            {**{f: bindparam(f"b_{f}") for f in (*VENUE_FIELDS, "updated_at")},
             "geom": func.ST_GeomFromText(bindparam("b_wkt"), 4326)})
        params = [{"b_id": row["id"], "b_wkt": row["geom"].data,
                   **{f"b_{f}": row[f] for f in (*VENUE_FIELDS, "updated_at")}}
                  for row in updates]
        for start in range(0, len(params), 5000):
            session.execute(stmt, params[start:start + 5000])
    report.inserted += len(inserts)
    report.updated += len(updates)
    return report


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    if any(old[f] != new.get(f) for f in VENUE_FIELDS):
        return False
    return abs(old["lon"] - new["lon"]) < 5e-8 and abs(old["lat"] - new["lat"]) < 5e-8


def import_path(session: Session, path: str | Path, *, datum: str = "wgs84",
                skip_invalid: bool = False,
                service_area: tuple[float, float, float, float]) -> ImportReport:
    """Read, validate and upsert a registry file as one transaction, committed.

    :raises ImportRejected: some features are invalid and ``skip_invalid`` is false; nothing
        is written then.
    """
    checked = exchange.check(exchange.read(path), service_area, datum)
    report = ImportReport(total=checked.total, skipped=len(checked.problems),
                          problems=checked.problems)
    if checked.problems and not skip_invalid:
        raise ImportRejected(
            f"{len(checked.problems)} of {checked.total} features are invalid; nothing was "
            "imported", problems=[p.__dict__ for p in checked.problems])
    try:
        upsert(session, checked.records, report)
    except BaseException:
        session.rollback()
        raise
    session.commit()
    return report


def feature_collection(features: Iterable[str]) -> str:
    """Feature texts joined into one FeatureCollection text."""
    return '{"type": "FeatureCollection", "features": [' + ",".join(features) + "]}"


def parse(features: Iterable[str]) -> list[dict[str, Any]]:
    """Feature texts as dicts (for callers that want Python objects, such as the CLI)."""
    return [json.loads(f) for f in features]


def _connection(session: Session | Connection) -> Connection:
    return session.connection() if isinstance(session, Session) else session


# --- search by name and pinyin (the map's search box) ------------------------------------

SEARCH_MAX = 50


@dataclass(frozen=True)
class SearchEntry:
    id: str
    name_zh: str
    name_en: str
    category: str
    lon: float
    lat: float
    zh: str  # name_zh, lowercased
    en: str  # name_en, lowercased
    en_key: str  # name_en, letters and digits only
    pinyin: str  # name_zh in pinyin without tones or spaces: "gugongbowuyuan"
    initials: str  # the syllables' first letters: "ggbwy"


def _fold(value: str) -> str:
    """Lowercase letters and digits only (ü as u): what pinyin and English keys compare."""
    return "".join(c for c in value.lower().replace("ü", "u") if c.isalnum())


def pinyin_keys(name: str) -> tuple[str, str]:
    """(full pinyin, initials) of a Chinese name, without tones: 故宫博物院 ->
    ("gugongbowuyuan", "ggbwy"). Letters and digits in the name stay as they are."""
    from pypinyin import Style, lazy_pinyin

    syllables = [s for s in lazy_pinyin(name, style=Style.NORMAL, errors="default") if s]
    full = _fold("".join(syllables)).replace("v", "u")  # lv (绿) is also typed lu
    initials = "".join(_fold(s)[:1] for s in syllables)
    return full, initials


@dataclass(frozen=True)
class SearchIndex:
    """The entries, and each key of all of them in one string ("\\n" between), so that a
    query is a few ``str.find`` passes in C rather than a Python loop over every venue."""

    entries: list[SearchEntry]
    haystacks: dict[str, tuple[str, list[int]]]

    def hits(self, key: str, needle: str) -> set[int]:
        """The indexes of the entries whose ``key`` contains ``needle``."""
        hay, starts = self.haystacks[key]
        found, i = set(), hay.find(needle)
        while i != -1:
            n = bisect.bisect_right(starts, i) - 1
            found.add(n)
            i = hay.find(needle, starts[n + 1] if n + 1 < len(starts) else len(hay))
        return found


def _haystack(values: list[str]) -> tuple[str, list[int]]:
    starts, pos = [], 0
    for v in values:
        starts.append(pos)
        pos += len(v) + 1
    return "\n".join(values), starts


def warm_search() -> None:
    """Load pypinyin and its dictionaries now (about 2 s), not in a family's first search."""
    from pypinyin import lazy_pinyin

    lazy_pinyin("故宫")


def search_index(conn: Connection) -> SearchIndex:
    """Every venue's names and pinyin keys, computed once per registry state and kept (the
    registry's row count and last ``updated_at`` name the state)."""
    from flask import current_app

    state = tuple(conn.execute(select(func.count(), func.max(Venue.updated_at))).one())
    cache = current_app.extensions.setdefault("voicemap.search_index", {})
    if cache.get("state") != state:
        rows = conn.execute(text(
            "SELECT id, name_zh, name_en, category, ST_X(geom), ST_Y(geom) FROM venues"))
        # Names kept from the last build keep their pinyin: after an import that changed a
        # few venues, only theirs is computed again.
        known: dict[str, tuple[str, str]] = cache.get("pinyin", {})
        pinyin: dict[str, tuple[str, str]] = {}
        entries = []
        for vid, zh, en, cat, x, y in rows:
            zh = zh or ""
            full, initials = pinyin[zh] = known.get(zh) or pinyin_keys(zh)
            entries.append(SearchEntry(vid, zh, en or "", cat, x, y, zh.lower(),
                                       (en or "").lower(), _fold(en or ""), full, initials))
        index = SearchIndex(entries, {k: _haystack([getattr(e, k) for e in entries])
                                      for k in ("zh", "en", "en_key", "pinyin", "initials")})
        cache.clear()
        cache.update(state=state, index=index, pinyin=pinyin)
    return cache["index"]


def check_query(q: str | None) -> str:
    """The search text: 1 to 100 characters, no control characters."""
    q = (q or "").strip()
    if not q:
        raise BadRequest("q is required: part of a venue's Chinese or English name, or its "
                         "pinyin without tones (gugong)", param="q")
    if len(q) > 100 or any(ord(c) < 32 for c in q):
        raise BadRequest("q must be at most 100 characters, without control characters",
                         param="q")
    return q


def search(conn: Connection, q: str, limit: int = 10) -> list[dict[str, Any]]:
    """Venues whose Chinese or English name contains ``q``, or whose name's pinyin (no
    tones, no spaces: "gugong", "gu gong") or initials ("ggbwy") starts with it or, for
    pinyin, contains it. Best first: a whole name, then a name or pinyin starting with it,
    then initials, then anywhere; shorter names first. Coordinates are WGS-84."""
    q = check_query(q)
    limit = min(max(limit, 1), SEARCH_MAX)
    low, key = q.lower(), _fold(q)
    pkey = key.replace("v", "u")  # as pinyin_keys: lv and lu alike
    index = search_index(conn)
    candidates = index.hits("zh", low) | index.hits("en", low)
    if key:
        candidates |= (index.hits("pinyin", pkey) | index.hits("en_key", key)
                       | index.hits("initials", key))
    found = []
    for e in (index.entries[i] for i in candidates):
        if low in (e.zh, e.en):
            rank = 0
        elif e.zh.startswith(low) or e.en.startswith(low) or (
                key and (e.pinyin.startswith(pkey) or e.en_key.startswith(key))):
            rank = 1
        elif len(key) >= 2 and e.initials.startswith(key):
            rank = 2
        elif low in e.zh or low in e.en or (len(key) >= 2 and (pkey in e.pinyin
                                                                or key in e.en_key)):
            rank = 3
        else:
            continue
        found.append((rank, len(e.name_zh), e.id, e))
    found.sort(key=lambda r: r[:3])
    return [{"id": e.id, "name_zh": e.name_zh, "name_en": e.name_en, "category": e.category,
             "lon": round(e.lon, 6), "lat": round(e.lat, 6)}
            for *_, e in found[:limit]]
