"""Play counts: how many times each clip was played, per day, and nothing about listeners.

A play is counted by the player's beacon (``POST /api/clips/<id>/played``, sent once per
clip per page on the first ``play``), not by audio requests: a browser asks for the same
MP3 several times (Range requests while seeking, a second request from iOS), a saved clip
is played from the service worker's cache without any request, and saving a venue for
offline downloads every clip without playing one. The beacon carries no body and the row
holds no address, cookie or time of day: only (clip, day, count). The day is the
Asia/Shanghai calendar's.

Each play is one ``INSERT ... ON CONFLICT DO UPDATE SET count = count + 1`` (PostgreSQL
and SQLite >= 3.24 read the same statement), so concurrent plays never lose a count.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from .models import Clip, PlayCount

TZ = ZoneInfo("Asia/Shanghai")
PERIODS = (30, 90)  # the chart's choices, in days

UPSERT = text(
    "INSERT INTO play_counts (clip_id, day, venue_id, count) VALUES (:clip, :day, :venue, 1) "
    "ON CONFLICT (clip_id, day) DO UPDATE SET count = play_counts.count + 1")


def today(now: datetime | None = None) -> date:
    """The date on the Asia/Shanghai clock (``now`` defaults to the present)."""
    return (now or datetime.now(UTC)).astimezone(TZ).date()


def count_play(session: Session, clip: Clip, now: datetime | None = None) -> None:
    """Add one play of ``clip`` (a published one: the caller checked) to today's row."""
    session.execute(UPSERT, {"clip": clip.id, "day": today(now), "venue": clip.venue_id})
    session.commit()


@dataclass
class VenuePlays:
    """A venue's plays over a period: per day (every day, zeros included), per clip."""

    start: date
    end: date  # inclusive
    days: list[tuple[date, int]]
    clips: list[tuple[str, str | None, int]]  # (clip id, title or None if deleted, plays)
    all_time: int

    @property
    def total(self) -> int:
        return sum(n for _, n in self.days)

    @property
    def peak(self) -> int:
        return max((n for _, n in self.days), default=0)


def for_venue(session: Session, venue_id: str, days: int = 30,
              now: datetime | None = None) -> VenuePlays:
    """The venue's plays on each of the last ``days`` days (today included)."""
    end = today(now)
    start = end - timedelta(days=days - 1)
    in_period = (PlayCount.venue_id == venue_id) & (PlayCount.day >= start) & \
        (PlayCount.day <= end)
    per_day = dict(session.execute(
        select(PlayCount.day, func.sum(PlayCount.count)).where(in_period)
        .group_by(PlayCount.day)).all())
    per_day = {_as_date(k): int(v) for k, v in per_day.items()}
    series = [(start + timedelta(days=i), per_day.get(start + timedelta(days=i), 0))
              for i in range(days)]
    per_clip = session.execute(
        select(PlayCount.clip_id, Clip.title, Clip.id, func.sum(PlayCount.count))
        .outerjoin(Clip, Clip.id == PlayCount.clip_id).where(in_period)
        .group_by(PlayCount.clip_id, Clip.title, Clip.id)
        .order_by(func.sum(PlayCount.count).desc(), PlayCount.clip_id)).all()
    clips = [(cid, (title or "") if exists else None, int(n))
             for cid, title, exists, n in per_clip]
    all_time = session.execute(select(func.coalesce(func.sum(PlayCount.count), 0))
                               .where(PlayCount.venue_id == venue_id)).scalar_one()
    return VenuePlays(start, end, series, clips, int(all_time))


def spreadsheet_safe(value: str | None) -> str:
    """Text a spreadsheet will not run as a formula (a title may begin with "=")."""
    value = value or ""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _as_date(value) -> date:
    # SQLite hands back the stored text when the column is read through an aggregate query.
    return value if isinstance(value, date) else date.fromisoformat(str(value))


CSV_COLUMNS = ("date", "venue_id", "clip_id", "clip_title", "clip_lang", "clip_deleted",
               "plays")


def csv_rows(session: Session, venue_id: str) -> Iterator[str]:
    """The venue's counts as CSV (UTF-8 with a byte-order mark, for Excel on Chinese
    Windows): one line per clip and day with plays, oldest first; ``date`` is Asia/Shanghai's.
    A deleted clip's lines stay, with ``clip_deleted`` true and no title."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")

    def flush() -> str:
        text_ = out.getvalue()
        out.seek(0)
        out.truncate()
        return text_

    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + flush()
    rows = session.execute(
        select(PlayCount.day, PlayCount.clip_id, Clip.id, Clip.title, Clip.lang,
               PlayCount.count)
        .outerjoin(Clip, Clip.id == PlayCount.clip_id)
        .where(PlayCount.venue_id == venue_id)
        .order_by(PlayCount.day, PlayCount.clip_id)).yield_per(1000)
    for n, (day, clip_id, exists, title, lang, count) in enumerate(rows, 1):
        writer.writerow((_as_date(day).isoformat(), venue_id, clip_id, spreadsheet_safe(title),
                         lang or "", "false" if exists else "true", count))
        if n % 500 == 0:
            yield flush()
    yield flush()
