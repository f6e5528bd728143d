"""/manage: venue managers sign in with their token, upload or record clips, and
administrators review. Session cookie, CSRF token on every form."""

from __future__ import annotations

import hmac
import secrets
from functools import wraps

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from .. import auth, clips, db, plays, policy, venues
from ..errors import VoicemapError
from ..limits import authenticate_limited, count_upload
from ..models import Manager
from ..storage import media_store
from .clips import attach_from_request
from .media import send_media

bp = Blueprint("manage", __name__, url_prefix="/manage")

CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
       "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


@bp.before_request
def check_csrf():
    if request.method == "POST":
        sent = request.form.get("csrf") or request.headers.get("X-CSRF-Token") or ""
        expected = session.get("csrf", "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            abort(400, description="the form has expired or did not come from this site; "
                                   "reload the page and try again")


@bp.after_request
def headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_context_processor
def inject():
    return {"csrf_token": csrf_token}


def signed_in() -> Manager | None:
    if "manage_manager" not in g:
        # Signing out bumps the manager's epoch, which ends every session they had.
        g.manage_manager = auth.session_manager(db.get_session(), session.get("manager_id"),
                                                session.get("epoch"))
    return g.manage_manager


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if signed_in() is None:
            return redirect(url_for("manage.index"))
        return view(*args, **kwargs)
    return wrapped


@bp.get("/")
def index():
    manager = signed_in()
    if manager is None:
        return render_template("manage/signin.html")
    s = db.get_session()
    pending = len(clips.pending(s)) if policy.is_admin(manager) else 0
    return render_template("manage/index.html", manager=manager,
                           counts=clips.counts_by_venue(s),
                           venues=venues.managed_by(s, manager), pending=pending)


@bp.post("/signin")
def signin():
    manager = authenticate_limited(db.get_session(), request.form.get("token", "").strip())
    if manager is None:
        return render_template("manage/signin.html", error="That token is not valid."), 401
    session.clear()  # a fresh session: no fixation
    session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME
    session["manager_id"] = manager.id
    session["epoch"] = manager.session_epoch
    csrf_token()
    return redirect(url_for("manage.index"))


@bp.post("/signout")
def signout():
    manager = signed_in()
    if manager is not None:
        auth.sign_out_everywhere(db.get_session(), manager)
    session.clear()
    return redirect(url_for("manage.index"))


@bp.get("/venues/<venue_id>")
@login_required
def venue(venue_id: str):
    manager = signed_in()
    s = db.get_session()
    place = venues.get(s, venue_id)
    if not policy.can_manage_venue(manager, venue_id):
        abort(403)
    return render_template("manage/venue.html", manager=manager, venue=place,
                           clips=clips.for_venue(s, venue_id, manager),
                           plays=venue_plays(venue_id, manager))


def venue_plays(venue_id: str, manager: Manager) -> plays.VenuePlays:
    """The venue's plays over the period the page asks for (``?days=30`` or ``90``)."""
    policy.require_play_counts(manager, venue_id)
    days = request.args.get("days", type=int)
    return plays.for_venue(db.get_session(), venue_id,
                           days if days in plays.PERIODS else plays.PERIODS[0])


@bp.get("/venues/<venue_id>/plays.csv")
@login_required
def plays_csv(venue_id: str):
    """The venue's play counts per clip and day, as CSV (UTF-8 with BOM). Built whole: a
    venue's rows are few (clips x days with plays), and the read ends before the reply."""
    s = db.get_session()
    venues.get(s, venue_id)
    policy.require_play_counts(signed_in(), venue_id)
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in venue_id)
    name = f"plays-{safe}-{plays.today().isoformat()}.csv"
    return current_app.response_class(
        "".join(plays.csv_rows(s, venue_id)).encode(), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
        content_type="text/csv; charset=utf-8")


@bp.post("/venues/<venue_id>/clips")
@login_required
def upload(venue_id: str):
    """The upload form and the in-browser recorder both post here."""
    wants_json = request.accept_mimetypes.best == "application/json"
    count_upload(signed_in())  # over the limit: 429 page (or JSON), not a flash
    try:
        clip = attach_from_request(venue_id, signed_in())
    except VoicemapError as exc:
        if wants_json:
            return jsonify(exc.to_dict()), exc.status
        flash(exc.message, "error")
        return redirect(url_for("manage.venue", venue_id=venue_id)), 303
    if wants_json:
        return jsonify(clips.to_dict(clip, private=True)), 201
    flash(f"Clip {clip.id} uploaded and waiting for review.", "ok")
    return redirect(url_for("manage.venue", venue_id=venue_id)), 303


@bp.get("/clips/<clip_id>.mp3")
@login_required
def listen(clip_id: str):
    """The processed file of a clip the manager may see, published or not."""
    clip = clips.get_visible(db.get_session(), clip_id, signed_in())
    return send_media(media_store(), "published", clip.audio_sha256, mimetype="audio/mpeg",
                      missing=f"the file of clip {clip_id} is missing")


@bp.post("/clips/<clip_id>/delete")
@login_required
def delete(clip_id: str):
    clip = clips.get(db.get_session(), clip_id)
    venue_id = clip.venue_id
    clips.delete(db.get_session(), media_store(), clip_id, signed_in())
    flash(f"Clip {clip_id} deleted everywhere.", "ok")
    return redirect(url_for("manage.venue", venue_id=venue_id)), 303


@bp.get("/review")
@login_required
def review():
    if not policy.is_admin(signed_in()):
        abort(403)
    return render_template("manage/review.html", manager=signed_in(),
                           clips=clips.pending(db.get_session()))


@bp.post("/clips/<clip_id>/<action>")
@login_required
def decide(clip_id: str, action: str):
    if action not in ("publish", "reject"):
        abort(404)
    try:
        clips.review(db.get_session(), clip_id, signed_in(), publish=action == "publish",
                     reason=request.form.get("reason"))
    except VoicemapError as exc:
        flash(exc.message, "error")
    else:
        flash(f"Clip {clip_id} {'published' if action == 'publish' else 'rejected'}.", "ok")
    return redirect(url_for("manage.review")), 303


@bp.errorhandler(403)
def forbidden(_exc):
    return render_template("error.html", status=403,
                           message="You do not manage this venue."), 403
