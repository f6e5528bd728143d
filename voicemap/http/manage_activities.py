"""/manage forms for activities (venue managers, their venues; administrators, any) and
information pages (administrators, with a preview). Routes on the /manage blueprint, so its
session sign-in, CSRF check and CSP apply; the services do the checking and authorising.

Plain forms that work on a phone without scripts: a day, start and end times and an
optional weekly repeat until a date, all on Beijing's clock.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from .. import activities, articles, db, policy, venues
from ..errors import NotFound, VoicemapError
from ..models import Venue
from .manage import bp, error_text, login_required, signed_in, tr

# The form field that holds what the API calls ``start``, ``end`` and ``rrule``.
FORM_FIELD = {"start": "start_time", "end": "end_time", "rrule": "until"}
ACTIVITY_TEXT = ("title_zh", "title_en", "description_zh", "description_en", "accessibility",
                 "booking_url")


def activity_body(form: Any) -> dict[str, Any]:
    """The API's JSON shape from the form: Beijing day and times, weekly until a date."""
    body: dict[str, Any] = {k: form.get(k, "") for k in ACTIVITY_TEXT}
    day, start, end = form.get("day", ""), form.get("start_time", ""), form.get("end_time", "")
    body["start"] = f"{day}T{start}:00+08:00" if day and start else None
    body["end"] = f"{day}T{end}:00+08:00" if day and end else None
    body["rrule"] = (f"FREQ=WEEKLY;UNTIL={form.get('until', '').replace('-', '')}"
                     if form.get("weekly") else None)
    if form.get("weekly") and not form.get("until"):
        body["rrule"] = "FREQ=WEEKLY"  # refused, naming rrule: a series needs an end
    body.update(min_age=form.get("min_age") or None, max_age=form.get("max_age") or None,
                price=form.get("price") or 0, booking_required=bool(form.get("booking_required")))
    return body


def activity_form(activity) -> dict[str, Any]:
    """An activity's values for the form."""
    start, end = activities.local(activity.starts_at), activities.local(activity.ends_at)
    until = ""
    if activity.rrule:
        last = activities.expand(activity.starts_at, activity.rrule)[-1]
        until = last.date().isoformat()
    return {**{k: getattr(activity, k) or "" for k in ACTIVITY_TEXT},
            "day": start.date().isoformat(), "start_time": f"{start:%H:%M}",
            "end_time": f"{end:%H:%M}", "weekly": bool(activity.rrule), "until": until,
            "min_age": activity.min_age if activity.min_age is not None else "",
            "max_age": activity.max_age if activity.max_age is not None else "",
            "price": f"{activity.price:g}", "booking_required": activity.booking_required}


def _venue(venue_id: str) -> Venue:
    try:
        place = venues.get(db.get_session(), venue_id)
    except NotFound:
        abort(404)
    if not policy.can_manage_venue(signed_in(), venue_id):
        abort(403)
    return place


def _show(place: Venue, form: dict[str, Any], activity=None, error: str | None = None,
          param: str | None = None, status: int = 200):
    s = db.get_session()
    now = activities.utc(activities.utcnow())
    listed = activities.find(s, activities.Filters(now - activities.timedelta(days=1),
                                                   now + activities.MAX_WINDOW,
                                                   venue_id=place.id))
    acts = [a for a, *_ in listed]
    upcoming = {a.id: [activities.iso(x) for x in activities.expand(
        a.starts_at, a.rrule, after=now)][:60] for a in acts}
    return render_template("manage/activities.html", manager=signed_in(), venue=place,
                           listed=acts, upcoming=upcoming, form=form, activity=activity,
                           error=error, param=FORM_FIELD.get(param, param),
                           iso=activities.iso), status


@bp.route("/venues/<venue_id>/activities", methods=["GET", "POST"])
@login_required
def venue_activities(venue_id: str):
    place = _venue(venue_id)
    if request.method == "GET":
        return _show(place, {"price": "0"})
    try:
        made = activities.create(db.get_session(), venue_id, activity_body(request.form),
                                 signed_in())
    except VoicemapError as exc:
        db.get_session().rollback()
        return _show(place, request.form, error=error_text(exc), param=exc.details.get("param"),
                     status=exc.status)
    flash(tr("mg_act_added", id=made.id), "ok")
    return redirect(url_for("manage.venue_activities", venue_id=venue_id)), 303


@bp.route("/activities/<activity_id>", methods=["GET", "POST"])
@login_required
def edit_activity(activity_id: str):
    s = db.get_session()
    activity = activities.get(s, activity_id)
    place = _venue(activity.venue_id)
    if request.method == "GET":
        return _show(place, activity_form(activity), activity)
    try:
        activities.edit(s, activity_id, activity_body(request.form), signed_in())
    except VoicemapError as exc:
        s.rollback()
        return _show(place, request.form, activity, error=error_text(exc),
                     param=exc.details.get("param"), status=exc.status)
    flash(tr("mg_act_saved", id=activity_id), "ok")
    return redirect(url_for("manage.venue_activities", venue_id=place.id)), 303


@bp.post("/activities/<activity_id>/cancel")
@login_required
def cancel_activity(activity_id: str):
    """Cancel the activity, or the one occurrence the form names."""
    s = db.get_session()
    activity = activities.get(s, activity_id)
    place = _venue(activity.venue_id)
    try:
        activities.cancel(s, activity_id, signed_in(), request.form.get("occurrence") or None)
    except VoicemapError as exc:
        flash(error_text(exc), "error")
    else:
        flash(tr("mg_act_cancel_done"), "ok")
    return redirect(url_for("manage.venue_activities", venue_id=place.id)), 303


# --- information pages (administrators) ----------------------------------------------------


def _admin():
    if not signed_in().is_admin:
        abort(403)


def _article_page(form: dict[str, Any], article=None, preview=None, error=None, param=None,
                  status: int = 200, uploaded=None):
    listed = articles.find(db.get_session(), drafts=True)
    no_alt = articles.images_without_alt(form.get("body_zh", ""), form.get("body_en", ""))
    return render_template("manage/articles.html", manager=signed_in(), listed=listed,
                           form=form, article=article, preview=preview, error=error,
                           param=param, sections=articles.SECTIONS, uploaded=uploaded,
                           no_alt=no_alt, no_alt_warning=articles.NO_ALT_WARNING), status


def _article_form() -> dict[str, str]:
    return {k: request.form.get(k, "") for k in articles.FIELDS}


@bp.route("/articles", methods=["GET", "POST"])
@login_required
def manage_articles():
    _admin()
    if request.method == "GET":
        return _article_page({"status": "draft", "section": articles.SECTIONS[0]})
    return _save_article(None)


@bp.route("/articles/<article_id>", methods=["GET", "POST"])
@login_required
def edit_article(article_id: str):
    _admin()
    article = articles.get(db.get_session(), article_id)
    if request.method == "GET":
        return _article_page({k: getattr(article, k) for k in articles.FIELDS}, article)
    return _save_article(article)


def _save_article(article):
    form = _article_form()
    action = request.form.get("action")
    chosen = request.files.get("image")
    if action == "upload" and chosen is not None and chosen.filename:
        return _upload_image(form, article)
    # Enter in a text field presses the form's first button, "Upload picture": with no
    # picture chosen that is a preview, never a save.
    if action in ("preview", "upload"):
        known = articles.known_images(db.get_session(), form["body_zh"], form["body_en"])
        preview = {"zh": articles.render(form["body_zh"], "zh", known),
                   "en": articles.render(form["body_en"], "en", known)}
        return _article_page(form, article, preview=preview)
    s = db.get_session()
    try:
        if article is None:
            saved = articles.create(s, form, signed_in())
        else:
            saved = articles.edit(s, article.id, form, signed_in())
    except VoicemapError as exc:
        s.rollback()
        return _article_page(form, article, error=error_text(exc),
                             param=exc.details.get("param"), status=exc.status)
    flash(tr("mg_art_saved", page=f"{saved.section}/{saved.slug}",
                 status=tr(f"mg_art_{saved.status}")), "ok")
    return redirect(url_for("manage.edit_article", article_id=saved.id)), 303


def _upload_image(form: dict[str, Any], article):
    """The editor's picture upload: the same pipeline as the API; the page comes back with
    the text as it was and the Markdown to paste."""
    from .info import add_image_from_request

    try:
        image, _ = add_image_from_request(signed_in(), field="image")
    except VoicemapError as exc:
        db.get_session().rollback()
        return _article_page(form, article, error=error_text(exc), param="image",
                             status=exc.status)
    uploaded = articles.image_to_dict(image, request.form.get("image_alt", ""),
                                      request.script_root)
    return _article_page(form, article, uploaded=uploaded)
