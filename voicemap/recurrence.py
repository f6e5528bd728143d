"""Time and recurrence on Beijing's clock: parsing, ISO 8601 with offset, the weekly RRULE
subset, and its expansion (python-dateutil). Knows nothing of Flask or the database.

China has kept UTC+8 without daylight saving since 1991, so an activity's local times are
unambiguous; the rule is still expanded on the Asia/Shanghai clock (zoneinfo), as calendars
do, so that "every Saturday at 10:00" stays 10:00.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from .errors import BadRequest

TZ = ZoneInfo("Asia/Shanghai")
MAX_COUNT = 200  # occurrences of one series
MAX_SERIES = timedelta(days=2 * 366)  # from the first occurrence to UNTIL
MAX_RECURRING_LENGTH = timedelta(hours=24)
MAX_WINDOW = timedelta(days=366)
DEFAULT_WINDOW = timedelta(days=30)
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
UNTIL = re.compile(r"^(\d{8})(T(\d{6})Z)?$")

# --- times -------------------------------------------------------------------------------


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; naive values (as SQLite hands them back) are UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def local(value: datetime) -> datetime:
    """The same instant on the activities' clock (Asia/Shanghai)."""
    return utc(value).astimezone(TZ)


def iso(value: datetime) -> str:
    """ISO 8601 with the Shanghai offset, to the second: ``2026-12-05T10:00:00+08:00``."""
    return local(value).replace(microsecond=0).isoformat()


def parse_time(value: Any, param: str) -> datetime:
    """An ISO 8601 date-time with an offset (or Z), as aware UTC; BadRequest otherwise."""
    if not isinstance(value, str):
        raise BadRequest(f"{param} must be an ISO 8601 date-time with an offset, such as "
                         "2026-12-05T10:00:00+08:00", param=param)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRequest(f"{param} is not an ISO 8601 date-time: {value!r}",
                         param=param) from None
    if parsed.tzinfo is None:
        raise BadRequest(f"{param} needs a UTC offset (such as +08:00 for Beijing time), so "
                         "that it names one instant", param=param)
    return utc(parsed).replace(microsecond=0)


def parse_bound(value: str | None, param: str, default: datetime) -> datetime:
    """A window bound from a query: a date (midnight in Beijing) or a date-time with offset."""
    if not value:
        return default
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            raise BadRequest(f"{param} is not a date: {value!r}", param=param) from None
        return datetime.combine(day, time(), TZ).astimezone(UTC)
    return parse_time(value, param)


def window(start: str | None, end: str | None, now: datetime | None = None
           ) -> tuple[datetime, datetime]:
    """``from``/``to`` query values as a UTC window: by default from now for 30 days; a
    date as ``to`` includes that whole day."""
    begin = parse_bound(start, "from", utc(now or datetime.now(UTC)))
    if end and re.fullmatch(r"\d{4}-\d{2}-\d{2}", end.strip()):
        finish = parse_bound(end, "to", begin) + timedelta(days=1)
    else:
        finish = parse_bound(end, "to", begin + DEFAULT_WINDOW)
    if finish <= begin:
        raise BadRequest("to must be after from", param="to")
    if finish - begin > MAX_WINDOW:
        raise BadRequest(f"the window from from to to is at most {MAX_WINDOW.days} days",
                         param="to")
    return begin, finish


# --- recurrence --------------------------------------------------------------------------


def check_rrule(value: Any, start: datetime) -> str | None:
    """The weekly rule in canonical form (UNTIL in UTC), or None; BadRequest names ``rrule``.

    Accepted: ``FREQ=WEEKLY`` with UNTIL (a UTC date-time or a date, which means the end of
    that day in Beijing) or COUNT, and optionally INTERVAL, BYDAY (plain days) and WKST.
    The first occurrence is ``start`` itself, so BYDAY must include its weekday.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest("rrule must be text such as FREQ=WEEKLY;UNTIL=20270224T235959Z",
                         param="rrule")
    text = value.strip().upper().removeprefix("RRULE:")
    parts: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, val = part.partition("=")
        if not sep or not val or key in parts:
            raise BadRequest(f"rrule is not KEY=VALUE;KEY=VALUE...: {value!r}", param="rrule")
        parts[key] = val
    unknown = set(parts) - {"FREQ", "UNTIL", "COUNT", "INTERVAL", "BYDAY", "WKST"}
    if unknown:
        raise BadRequest(f"rrule may use only FREQ, UNTIL, COUNT, INTERVAL, BYDAY and WKST; "
                         f"not {', '.join(sorted(unknown))}", param="rrule")
    if parts.get("FREQ") != "WEEKLY":
        raise BadRequest("rrule must be weekly (FREQ=WEEKLY)", param="rrule")
    if ("UNTIL" in parts) == ("COUNT" in parts):
        raise BadRequest("rrule needs an end: exactly one of UNTIL or COUNT", param="rrule")
    if "COUNT" in parts and not (parts["COUNT"].isdigit()
                                 and 1 <= int(parts["COUNT"]) <= MAX_COUNT):
        raise BadRequest(f"rrule COUNT must be 1 to {MAX_COUNT}", param="rrule")
    if "INTERVAL" in parts and not (parts["INTERVAL"].isdigit()
                                    and 1 <= int(parts["INTERVAL"]) <= 52):
        raise BadRequest("rrule INTERVAL must be 1 to 52", param="rrule")
    for key in ("BYDAY", "WKST"):
        days = parts.get(key, "MO").split(",")
        if any(d not in DAYS for d in days) or len(set(days)) != len(days):
            raise BadRequest(f"rrule {key} must list days among {','.join(DAYS)}",
                             param="rrule")
    if "BYDAY" in parts and DAYS[local(start).weekday()] not in parts["BYDAY"].split(","):
        raise BadRequest("rrule BYDAY must include the weekday of start (the first "
                         "occurrence)", param="rrule")
    if "UNTIL" in parts:
        parts["UNTIL"] = _until(parts["UNTIL"], start)
    order = ("FREQ", "INTERVAL", "BYDAY", "WKST", "UNTIL", "COUNT")
    rule = ";".join(f"{k}={parts[k]}" for k in order if k in parts)
    starts = expand(start, rule)
    if len(starts) > MAX_COUNT:
        raise BadRequest(f"rrule makes {len(starts)} occurrences; at most {MAX_COUNT}",
                         param="rrule")
    return rule


def _until(value: str, start: datetime) -> str:
    match = UNTIL.match(value)
    try:
        if match is None:
            raise ValueError
        day = datetime.strptime(match.group(1), "%Y%m%d").date()
        if match.group(2):
            until = datetime.combine(day, datetime.strptime(match.group(3), "%H%M%S").time(),
                                     UTC)
        else:  # a date: the whole of that day in Beijing
            until = datetime.combine(day, time(23, 59, 59), TZ).astimezone(UTC)
    except ValueError:
        raise BadRequest("rrule UNTIL must be a UTC date-time such as 20270224T235959Z, or "
                         "a date such as 20270224", param="rrule") from None
    if until < start:
        raise BadRequest("rrule UNTIL is before start", param="rrule")
    if until - start > MAX_SERIES:
        raise BadRequest(f"rrule UNTIL is more than {MAX_SERIES.days} days after start",
                         param="rrule")
    return until.strftime("%Y%m%dT%H%M%SZ")


@lru_cache(maxsize=4096)
def _rule(rule: str, first: datetime) -> rrule:
    """The parsed rule, kept: a series listed again (the next request for the same week)
    reuses its parse and the occurrences it has already computed."""
    return rrulestr(rule, dtstart=first, cache=True)


def expand(start: datetime, rule: str | None, after: datetime | None = None,
           before: datetime | None = None, length: timedelta = timedelta(0)
           ) -> list[datetime]:
    """Occurrence starts (aware, Asia/Shanghai) of a series, all or those overlapping
    [after, before) given each lasts ``length``. The rule is expanded on Beijing's clock."""
    first = local(start)
    if rule is None:
        starts = [first]
    elif after is not None and before is not None:  # only the window's, not the series'
        return _rule(rule, first).between(after - length, before)
    else:
        starts = list(_rule(rule, first))
    if after is not None:
        starts = [s for s in starts if s + length > after]
    if before is not None:
        starts = [s for s in starts if s < before]
    return starts


ALL_DAYS = 0b1111111


def weekday_mask(begin: datetime, end: datetime) -> int:
    """The Beijing weekdays on which an occurrence of a series overlapping [begin, end) may
    start (one may start up to MAX_RECURRING_LENGTH before ``begin``), Monday = bit 0."""
    first = local(begin - MAX_RECURRING_LENGTH).date()
    last = local(end - timedelta(microseconds=1)).date()
    if (last - first).days >= 6:
        return ALL_DAYS
    return sum({1 << (first + timedelta(days=n)).weekday()
                for n in range((last - first).days + 1)})


WEEKDAYS = {"zh": "一二三四五六日", "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")}


def when_text(occurrence: dict[str, Any], lang: str) -> str:
    """An occurrence's day and times for a page: "12月5日 周六 10:00–11:30" or
    "Sat 5 Dec 10:00–11:30" (Beijing time)."""
    start = datetime.fromisoformat(occurrence["start"]).astimezone(TZ)
    end = datetime.fromisoformat(occurrence["end"]).astimezone(TZ)
    span = f"{start:%H:%M}–{end:%H:%M}" if start.date() == end.date() else \
        f"{start:%H:%M} – {end:%Y-%m-%d %H:%M}"
    if lang == "zh":
        return f"{start.month}月{start.day}日 周{WEEKDAYS['zh'][start.weekday()]} {span}"
    return f"{WEEKDAYS['en'][start.weekday()]} {start.day} {start:%b} {span}"
