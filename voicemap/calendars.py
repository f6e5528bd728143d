"""iCalendar (RFC 5545) feeds of activities, for phone calendars to subscribe to.

One VEVENT per activity, with its weekly RRULE, in the Asia/Shanghai time zone whose
VTIMEZONE the feed carries. UIDs are stable (``activity-<id>@<domain>``) and SEQUENCE grows
with every change, so a subscribed calendar updates the event in place. A cancelled
activity is STATUS:CANCELLED; a cancelled occurrence of a series is an override of that
occurrence (same UID, RECURRENCE-ID) with STATUS:CANCELLED: marked, not dropped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any

from icalendar import Calendar, Event, Timezone, vRecur

from .activities import TZ, cancelled_starts, local, utc
from .models import Activity

PRODID = "-//voicemap//Beijing child-friendly city activities//EN"
UID_DOMAIN = "voicemap"


@cache
def _vtimezone() -> Timezone:
    """Asia/Shanghai as a VTIMEZONE (China has kept UTC+8 without daylight saving since
    1991); made once, as it takes a while to compute."""
    return Timezone.from_tzinfo(TZ, first_date=datetime(2020, 1, 1),
                                last_date=datetime(2040, 1, 1))


def uid(activity: Activity) -> str:
    """The activity's calendar UID: the same in every feed and for ever."""
    return f"activity-{activity.id}@{UID_DOMAIN}"


def _text(activity: Activity, venue: Any, lang: str) -> dict[str, str]:
    other = "en" if lang == "zh" else "zh"

    def pick(obj: Any, field: str) -> str:
        return getattr(obj, f"{field}_{lang}") or getattr(obj, f"{field}_{other}") or ""

    lines = [pick(activity, "description")]
    if activity.accessibility:
        lines.append(activity.accessibility)
    if activity.min_age is not None or activity.max_age is not None:
        lines.append(f"{'年龄' if lang == 'zh' else 'Ages'}: "
                     f"{activity.min_age if activity.min_age is not None else 0}-"
                     f"{activity.max_age if activity.max_age is not None else 17}")
    lines.append(("免费" if lang == "zh" else "Free") if activity.price == 0 else
                 f"{'价格' if lang == 'zh' else 'Price'}: ¥{activity.price:g}")
    if activity.booking_required:
        lines.append("需要预约" if lang == "zh" else "Booking required")
    address = pick(venue, "address")
    location = pick(venue, "name") + (f", {address}" if address else "")
    return {"summary": pick(activity, "title"), "description": "\n".join(x for x in lines if x),
            "location": location}


def _event(activity: Activity, venue: Any, lon: float, lat: float, lang: str,
           venue_url: str) -> Event:
    words = _text(activity, venue, lang)
    event = Event()
    event.add("uid", uid(activity))
    event.add("dtstamp", utc(activity.updated_at))
    event.add("last-modified", utc(activity.updated_at))
    event.add("created", utc(activity.created_at))
    event.add("sequence", activity.sequence)
    event.add("dtstart", local(activity.starts_at))
    event.add("dtend", local(activity.ends_at))
    event.add("summary", words["summary"])
    if words["description"]:
        event.add("description", words["description"])
    event.add("location", words["location"])
    event.add("geo", (lat, lon))
    event.add("url", activity.booking_url or venue_url)
    event.add("status", "CANCELLED" if activity.status == "cancelled" else "CONFIRMED")
    if activity.rrule:
        event.add("rrule", vRecur.from_ical(activity.rrule))
    return event


def _cancelled_occurrence(master: Event, activity: Activity, start: datetime) -> Event:
    length = utc(activity.ends_at) - utc(activity.starts_at)
    event = Event()
    for key in ("uid", "dtstamp", "sequence", "summary", "location", "url"):
        event[key] = master[key]
    event.add("recurrence-id", local(start))
    event.add("dtstart", local(start))
    event.add("dtend", local(start + length))
    event.add("status", "CANCELLED")
    return event


def _events(activity: Activity, venue: Any, lon: float, lat: float, lang: str,
            url: str) -> bytes:
    """The activity's VEVENT (and its cancelled occurrences'), as iCalendar text, cached.

    icalendar takes milliseconds per event; the key holds everything the text is made of
    (SEQUENCE grows with every change of the activity), so a cached text is never stale.
    """
    key = (activity.id, activity.sequence, utc(activity.updated_at), activity.status, lang,
           url, tuple(getattr(venue, f) for f in VENUE_FIELDS), lon, lat,
           tuple(sorted(cancelled_starts(activity))))
    text = _CACHE.get(key)
    if text is None:
        master = _event(activity, venue, lon, lat, lang, url)
        text = master.to_ical()
        if activity.rrule and activity.status != "cancelled":
            for start in key[-1]:
                text += _cancelled_occurrence(master, activity, start).to_ical()
        if len(_CACHE) >= CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))  # the oldest entry
        _CACHE[key] = text
    return text


VENUE_FIELDS = ("id", "name_zh", "name_en", "address_zh", "address_en")
CACHE_SIZE = 20_000
_CACHE: dict[tuple, bytes] = {}


def feed(rows: list[tuple[Activity, Any, float, float]], *, name: str, lang: str,
         venue_url: Any) -> bytes:
    """The iCalendar text of these activities; ``venue_url(venue_id)`` links each venue."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", TZ.key)
    cal.add("refresh-interval", timedelta(hours=6), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", timedelta(hours=6))
    cal.add_component(_vtimezone())
    head = cal.to_ical()
    end = b"END:VCALENDAR\r\n"
    if not head.endswith(end):  # pragma: no cover (icalendar's own framing)
        raise RuntimeError("unexpected iCalendar framing from icalendar")
    body = b"".join(_events(activity, venue, lon, lat, lang, venue_url(venue.id))
                    for activity, venue, lon, lat in rows)
    return head[:-len(end)] + body + end
