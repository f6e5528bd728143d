"""The activities API and the iCalendar feeds: managers create, edit and cancel; anyone reads."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, jsonify, request

from .. import activities, calendars, config, db, venues
from ..errors import BadRequest
from .clips import current_manager
from .pages import choose_lang, venue_url

bp = Blueprint("activities", __name__)

FEED_PAST, FEED_AHEAD = timedelta(days=30), timedelta(days=335)


def _body():
    body = request.get_json(silent=True)
    if body is None:
        raise BadRequest("send the activity as a JSON object (Content-Type: application/json)",
                         param="body")
    return body


def filters(venue_id: str | None = None) -> activities.Filters:
    """The listing's filters from the query: from, to, bbox, category, age, free."""
    begin, end = activities.window(request.args.get("from"), request.args.get("to"))
    bbox = request.args.get("bbox")
    age = request.args.get("age")
    if age is not None and not (age.isdigit() and int(age) <= activities.MAX_AGE):
        raise BadRequest(f"age must be a whole number from 0 to {activities.MAX_AGE}",
                         param="age")
    free = request.args.get("free", "")
    if free not in ("", "0", "1"):
        raise BadRequest("free must be 1 (only free activities) or 0", param="free")
    return activities.Filters(
        begin, end, bbox=config.parse_bbox(bbox) if bbox else None,
        categories=venues.check_categories(request.args.getlist("category")),
        age=int(age) if age is not None else None, free=free == "1", venue_id=venue_id)


@bp.post("/api/venues/<venue_id>/activities")
def create(venue_id: str):
    manager = current_manager()
    activity = activities.create(db.get_session(), venue_id, _body(), manager)
    return jsonify(activities.to_dict(activity)), 201


@bp.put("/api/activities/<activity_id>")
def edit(activity_id: str):
    activity = activities.edit(db.get_session(), activity_id, _body(), current_manager())
    return jsonify(activities.to_dict(activity))


@bp.delete("/api/activities/<activity_id>")
def cancel(activity_id: str):
    """Cancel the activity, or with ``?occurrence=<start>`` one occurrence of it."""
    activity = activities.cancel(db.get_session(), activity_id, current_manager(),
                                 request.args.get("occurrence"))
    return jsonify(activities.to_dict(activity))


@bp.get("/api/activities")
def listing():
    """Occurrences in the window as a GeoJSON FeatureCollection, ordered by start."""
    features = activities.occurrences(db.get_session(), filters())
    return jsonify(type="FeatureCollection", features=features)


@bp.get("/api/activities/<activity_id>")
def detail(activity_id: str):
    return jsonify(activities.to_dict(activities.get(db.get_session(), activity_id),
                                      upcoming=10))


@bp.get("/api/venues/<venue_id>/activities")
def venue_activities(venue_id: str):
    """The venue's activities with an occurrence in the window (default the next 30 days)."""
    session = db.get_session()
    venues.get(session, venue_id)
    rows = activities.find(session, filters(venue_id))
    return jsonify(activities=[activities.to_dict(a, upcoming=10) for a, *_ in rows])


def _ics(rows, name: str) -> Response:
    body = calendars.feed(rows, name=name, lang=choose_lang(), venue_url=venue_url)
    resp = Response(body, mimetype="text/calendar")
    resp.headers["Content-Type"] = "text/calendar; charset=utf-8"
    resp.headers["Cache-Control"] = "public, max-age=900"
    resp.headers["Content-Disposition"] = "inline; filename=activities.ics"
    return resp


def feed_filters(venue_id: str | None = None) -> activities.Filters:
    """As ``filters``, but a subscription's default window is 30 days back to a year on."""
    found = filters(venue_id)
    if "from" not in request.args and "to" not in request.args:
        now = activities.utc(activities.utcnow())
        found.begin, found.end = now - FEED_PAST, now + FEED_AHEAD
    return found


@bp.get("/venues/<venue_id>/activities.ics")
def venue_feed(venue_id: str):
    session = db.get_session()
    venue = venues.get(session, venue_id)
    name = venue.name_zh if choose_lang() == "zh" else venue.name_en
    return _ics(activities.find(session, feed_filters(venue_id)), name)


@bp.get("/activities.ics")
def feed():
    name = "北京儿童友好活动" if choose_lang() == "zh" else "Beijing child-friendly activities"
    return _ics(activities.find(db.get_session(), feed_filters()), name)
