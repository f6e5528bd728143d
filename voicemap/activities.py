"""Activities at venues: validation, create/edit/cancel, and occurrences in a window.

An activity happens once, or weekly (a small RFC 5545 RRULE subset, always bounded by
UNTIL or COUNT) on the venue's clock, Asia/Shanghai. Times are stored in UTC and spoken in
ISO 8601 with an offset. Cancelling one occurrence of a series records its original start;
cancelling the activity sets its status. Both stay visible, marked, so that families and
subscribed calendars learn of the cancellation rather than see the event vanish. Every
change is validated whole before anything is written: nothing is ever half-saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Bundle, Session, selectinload

from . import policy
from .clips import _text
from .errors import BadRequest, NotFound
from .models import Activity, CancelledOccurrence, Manager, Venue, utcnow
from .recurrence import (  # noqa: F401 (re-exported: callers see one activities module)
    ALL_DAYS,
    DEFAULT_WINDOW,
    MAX_RECURRING_LENGTH,
    MAX_WINDOW,
    TZ,
    check_rrule,
    expand,
    iso,
    local,
    parse_time,
    utc,
    weekday_mask,
    when_text,
    window,
)

STATUSES = ("scheduled", "cancelled")
MIN_AGE, MAX_AGE = 0, 17
MAX_PRICE = 100_000  # yuan
MAX_SINGLE_LENGTH = timedelta(days=92)
TITLE_MAX, TEXT_MAX = 200, 5000

TEXT_FIELDS = {"title_zh": TITLE_MAX, "title_en": TITLE_MAX, "description_zh": TEXT_MAX,
               "description_en": TEXT_MAX, "accessibility": TEXT_MAX}
FIELDS = (*TEXT_FIELDS, "start", "end", "rrule", "min_age", "max_age", "price",
          "booking_required", "booking_url", "status")


# --- validation --------------------------------------------------------------------------


def _int(value: Any, param: str, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadRequest(f"{param} must be a whole number from {low} to {high}", param=param)
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{param} must be a whole number from {low} to {high}",
                         param=param) from None
    if not low <= number <= high:
        raise BadRequest(f"{param} must be from {low} to {high}, got {number}", param=param)
    return number


def _bool(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0",
                                                    "no", "off", ""):
        return value.lower() in ("true", "1", "yes", "on")
    raise BadRequest(f"{param} must be true or false", param=param)


def check_booking_url(value: Any) -> str | None:
    """An https link with a host, or None; BadRequest names ``booking_url``."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 2000:
        raise BadRequest("booking_url must be an https link of at most 2000 characters",
                         param="booking_url")
    value = value.strip()
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() != "https" or not parts.hostname:
        raise BadRequest("booking_url must be an https:// link", param="booking_url")
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise BadRequest("booking_url contains spaces or control characters",
                         param="booking_url")
    return value


def check(data: Any, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The activity's checked fields: ``data`` over ``current`` (an edit) or alone (a new
    one). BadRequest names the first bad field; unknown fields are refused too."""
    if not isinstance(data, dict):
        raise BadRequest("send a JSON object with title_zh, title_en, start, end, ...",
                         param="body")
    unknown = sorted(set(data) - set(FIELDS) - {"venue_id"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; the fields are "
                         f"{', '.join(FIELDS)}", param=unknown[0])
    merged = {**(current or {}), **data}
    out: dict[str, Any] = {}
    for name, limit in TEXT_FIELDS.items():
        raw = merged.get(name)
        if raw is not None and not isinstance(raw, str):
            raise BadRequest(f"{name} must be text", param=name)
        value = _text(merged, name)
        if len(value) > limit:
            raise BadRequest(f"{name} is longer than {limit} characters", param=name)
        out[name] = value or None
    for name in ("title_zh", "title_en"):
        if not out[name]:
            raise BadRequest(f"{name} is required", param=name)
    if merged.get("start") is None:
        raise BadRequest("start is required (ISO 8601 with offset)", param="start")
    if merged.get("end") is None:
        raise BadRequest("end is required (ISO 8601 with offset)", param="end")
    start = parse_time(merged["start"], "start")
    end = parse_time(merged["end"], "end")
    if end <= start:
        raise BadRequest("end must be after start", param="end")
    rule = check_rrule(merged.get("rrule"), start)
    longest = MAX_RECURRING_LENGTH if rule else MAX_SINGLE_LENGTH
    if end - start > longest:
        raise BadRequest(f"an occurrence lasts at most {longest}", param="end")
    out["start"], out["end"], out["rrule"] = start, end, rule
    out["min_age"] = _int(merged.get("min_age"), "min_age", MIN_AGE, MAX_AGE)
    out["max_age"] = _int(merged.get("max_age"), "max_age", MIN_AGE, MAX_AGE)
    if (out["min_age"] is not None and out["max_age"] is not None
            and out["min_age"] > out["max_age"]):
        raise BadRequest("max_age must not be below min_age", param="max_age")
    price = merged.get("price", 0)
    if price is None or price == "":
        price = 0
    if isinstance(price, str):
        try:
            price = float(price)
        except ValueError:
            raise BadRequest("price must be a number of yuan (0 for free)",
                             param="price") from None
    if isinstance(price, bool) or not isinstance(price, int | float) or price != price:
        raise BadRequest("price must be a number of yuan (0 for free)", param="price")
    if not 0 <= price <= MAX_PRICE:
        raise BadRequest(f"price must be from 0 to {MAX_PRICE} yuan", param="price")
    out["price"] = round(float(price), 2)
    out["booking_required"] = _bool(merged.get("booking_required", False), "booking_required")
    out["booking_url"] = check_booking_url(merged.get("booking_url"))
    status = merged.get("status") or "scheduled"
    if status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}", param="status")
    out["status"] = status
    return out


# --- changes -----------------------------------------------------------------------------


def get(session: Session, activity_id: Any) -> Activity:
    """The activity, or NotFound."""
    found = session.get(Activity, activity_id) if str(activity_id).isdigit() else None
    if found is None:
        raise NotFound(f"no activity with id {activity_id!r}")
    return found


def _venue(session: Session, venue_id: str) -> Venue:
    venue = session.get(Venue, venue_id)
    if venue is None:
        raise BadRequest(f"no venue with id {venue_id!r}", param="venue")
    return venue


def _apply(activity: Activity, fields: dict[str, Any]) -> None:
    for name in (*TEXT_FIELDS, "rrule", "min_age", "max_age", "price", "booking_required",
                 "booking_url", "status"):
        setattr(activity, name, fields[name])
    activity.starts_at, activity.ends_at = fields["start"], fields["end"]
    length = fields["end"] - fields["start"]
    starts = expand(fields["start"], fields["rrule"])
    activity.last_ends_at = utc(starts[-1] + length)
    activity.weekdays = sum({1 << s.weekday() for s in starts})
    activity.updated_at = utcnow()


def create(session: Session, venue_id: str, data: Any, manager: Manager | None) -> Activity:
    """A new activity at this venue (a manager of it, or an administrator)."""
    policy.require_signed_in(manager)
    _venue(session, venue_id)
    policy.require_venue_manager(manager, venue_id)
    return add(session, venue_id, data, created_by=manager.id)


def add(session: Session, venue_id: str, data: Any, created_by: int | None = None
        ) -> Activity:
    """Check and save a new activity; callers have authorised it (demo data: nobody)."""
    _venue(session, venue_id)
    if isinstance(data, dict) and data.get("venue_id") not in (None, venue_id):
        raise BadRequest("venue_id in the body differs from the venue in the path",
                         param="venue_id")
    fields = check(data)
    activity = Activity(venue_id=venue_id, created_by=created_by, sequence=0)
    _apply(activity, fields)
    session.add(activity)
    session.commit()
    return activity


def current_fields(activity: Activity) -> dict[str, Any]:
    """The activity as the input ``check`` takes, for an edit to be merged over."""
    return {**{name: getattr(activity, name) for name in (
        *TEXT_FIELDS, "rrule", "min_age", "max_age", "price", "booking_required",
        "booking_url", "status")}, "start": iso(activity.starts_at), "end": iso(activity.ends_at)}


def _allowed(session: Session, activity_id: Any, manager: Manager | None) -> Activity:
    policy.require_signed_in(manager)
    activity = get(session, activity_id)
    policy.require_venue_manager(manager, activity.venue_id)
    return activity


def edit(session: Session, activity_id: Any, data: Any, manager: Manager | None) -> Activity:
    """Change some fields of an activity (the others stay); validated whole before saving.

    Cancelled occurrences that the new times no longer produce are dropped.
    """
    activity = _allowed(session, activity_id, manager)
    if isinstance(data, dict) and data.get("venue_id") not in (None, activity.venue_id):
        raise BadRequest("an activity cannot move to another venue; cancel it and create "
                         "one there", param="venue_id")
    fields = check(data, current_fields(activity))
    _apply(activity, fields)
    starts = {utc(s) for s in expand(fields["start"], fields["rrule"])}
    for gone in [c for c in activity.cancelled if utc(c.starts_at) not in starts]:
        activity.cancelled.remove(gone)
    activity.sequence += 1
    session.commit()
    return activity


def cancel(session: Session, activity_id: Any, manager: Manager | None,
           occurrence: str | None = None) -> Activity:
    """Cancel the whole activity, or the one occurrence starting at ``occurrence``."""
    activity = _allowed(session, activity_id, manager)
    if occurrence is None:
        activity.status = "cancelled"
    else:
        when = parse_time(occurrence, "occurrence")
        if when not in {utc(s) for s in expand(activity.starts_at, activity.rrule)}:
            raise BadRequest(f"the activity has no occurrence starting at {occurrence}",
                             param="occurrence")
        if all(utc(c.starts_at) != when for c in activity.cancelled):
            activity.cancelled.append(CancelledOccurrence(starts_at=when))
    activity.sequence += 1
    activity.updated_at = utcnow()
    session.commit()
    return activity


# --- reading -----------------------------------------------------------------------------


def cancelled_starts(activity: Activity) -> set[datetime]:
    return {utc(c.starts_at) for c in activity.cancelled}


def to_dict(activity: Activity, *, upcoming: int = 0, now: datetime | None = None
            ) -> dict[str, Any]:
    """The activity as the API shows it; ``upcoming`` adds that many next occurrences."""
    out: dict[str, Any] = {
        "id": activity.id, "venue_id": activity.venue_id,
        **{name: getattr(activity, name) for name in TEXT_FIELDS},
        "start": iso(activity.starts_at), "end": iso(activity.ends_at),
        "rrule": activity.rrule, "min_age": activity.min_age, "max_age": activity.max_age,
        "price": activity.price, "free": activity.price == 0,
        "booking_required": activity.booking_required, "booking_url": activity.booking_url,
        "status": activity.status,
        "cancelled_occurrences": [iso(c.starts_at) for c in activity.cancelled],
        "updated_at": iso(activity.updated_at),
    }
    if upcoming:
        length = utc(activity.ends_at) - utc(activity.starts_at)
        off = cancelled_starts(activity)
        starts = expand(activity.starts_at, activity.rrule, after=utc(now or utcnow()),
                        length=length)[:upcoming]
        out["occurrences"] = [occurrence_dict(activity, s, length, off) for s in starts]
    return out


def occurrence_dict(activity: Activity, start: datetime, length: timedelta,
                    off: set[datetime]) -> dict[str, str]:
    cancelled = activity.status == "cancelled" or utc(start) in off
    return {"start": iso(start), "end": iso(start + length),
            "status": "cancelled" if cancelled else "scheduled"}


@dataclass
class Filters:
    """What a listing asks for: a window, and optionally a box, categories, an age, free."""

    begin: datetime
    end: datetime
    bbox: tuple[float, float, float, float] | None = None
    categories: list[str] | None = None
    age: int | None = None
    free: bool = False
    venue_id: str | None = None


# What listings and feeds need of a venue (its geometry only as WGS-84 lon/lat).
PLACE = Bundle("venue", Venue.id, Venue.name_zh, Venue.name_en, Venue.category,
               Venue.address_zh, Venue.address_en)


def find(session: Session, filters: Filters) -> list[tuple[Activity, Any, float, float]]:
    """Activities with an occurrence that may overlap the window, each with its venue's
    names, category and addresses (attributes as on ``Venue``) and WGS-84 point."""
    lon, lat = func.ST_X(Venue.geom), func.ST_Y(Venue.geom)
    query = (select(Activity, PLACE, lon, lat).join(Venue, Activity.venue_id == Venue.id)
             .options(selectinload(Activity.cancelled))
             .where(Activity.starts_at < filters.end, Activity.last_ends_at > filters.begin)
             .order_by(Activity.starts_at, Activity.id))
    mask = weekday_mask(filters.begin, filters.end)
    if mask != ALL_DAYS:  # single events are placed exactly by their first start and end
        query = query.where(or_(Activity.rrule.is_(None),
                                Activity.weekdays.op("&")(mask) != 0))
    if filters.venue_id is not None:
        query = query.where(Activity.venue_id == filters.venue_id)
    if filters.bbox is not None:
        w, s, e, n = filters.bbox
        query = query.where(lon >= w, lon <= e, lat >= s, lat <= n)
    if filters.categories:
        query = query.where(Venue.category.in_(filters.categories))
    if filters.age is not None:
        query = query.where(or_(Activity.min_age.is_(None), Activity.min_age <= filters.age),
                            or_(Activity.max_age.is_(None), Activity.max_age >= filters.age))
    if filters.free:
        query = query.where(Activity.price == 0)
    return [tuple(row) for row in session.execute(query).all()]


def occurrences(session: Session, filters: Filters) -> list[dict[str, Any]]:
    """Every occurrence overlapping the window as a GeoJSON Feature at its venue, by start.

    Cancelled occurrences (and those of cancelled activities) are included, marked
    ``status: cancelled``.
    """
    found = []
    for activity, venue, lon, lat in find(session, filters):
        length = utc(activity.ends_at) - utc(activity.starts_at)
        off = cancelled_starts(activity)  # aware datetimes compare and hash as instants
        whole = activity.status == "cancelled"
        geometry = {"type": "Point", "coordinates": [lon, lat]}
        before = {"activity_id": activity.id, "venue_id": venue.id,
                  "venue_name_zh": venue.name_zh, "venue_name_en": venue.name_en,
                  "category": venue.category, "title_zh": activity.title_zh,
                  "title_en": activity.title_en}
        after = {"min_age": activity.min_age, "max_age": activity.max_age,
                 "price": activity.price, "free": activity.price == 0,
                 "booking_required": activity.booking_required,
                 "booking_url": activity.booking_url}
        for start in expand(activity.starts_at, activity.rrule, filters.begin, filters.end,
                            length):
            # Occurrences are on Beijing's clock already, to the second (see parse_time).
            props = {**before, "start": start.isoformat(),
                     "end": (start + length).isoformat(),
                     "status": "cancelled" if whole or start in off else "scheduled", **after}
            found.append((start, activity.id, {
                "type": "Feature",
                "id": f"{activity.id}-{start.astimezone(UTC):%Y%m%dT%H%M%SZ}",
                "geometry": geometry, "properties": props}))
    found.sort(key=lambda item: item[:2])
    return [feature for *_, feature in found]
