"""/manage: venue managers sign in with their token, upload or record clips, and
administrators review. Session cookie, CSRF token on every form (Flask-WTF's CSRFProtect,
scoped to this blueprint: see ``security``).

The pages speak one language, chosen like the public pages' (``?lang=``, else the browser's
Accept-Language, else Chinese) and remembered in the session, so that forms and redirects
keep it (Flask-Babel's locale for /manage, ``lang``). Every message shown is a key
(``mg_``) of the gettext catalogues (``web/translations``, ``voicemap.i18n``); a service's
error is shown through its code (``error_text``), its English message only as a fallback.
"""

from __future__ import annotations

from functools import wraps

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, generate_csrf
from werkzeug.exceptions import HTTPException

from .. import auth, categories, clips, db, plays, policy, venues
from ..errors import VoicemapError
from ..limits import authenticate_limited, count_upload
from ..models import Manager
from ..storage import media_store
from .clips import attach_from_request, replace_from_request
from .media import send_media
from .security import csrf, own_header

bp = Blueprint("manage", __name__, url_prefix="/manage")

CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
       "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")


CSRF_REFUSED = ("the form has expired or did not come from this site; reload the page and "
                "try again")


@bp.before_request
def check_csrf():
    """Every POST here carries the session's token (Flask-WTF's ``CSRFProtect``): the form
    field ``csrf`` or the ``X-CSRF-Token`` header (``security.init_app`` names them)."""
    csrf.protect()


@bp.errorhandler(CSRFError)
def csrf_refused(exc: CSRFError):
    current_app.logger.info("CSRF check failed: %s", exc.description)
    return http_error(exc)


@bp.after_request
def headers(response):
    response.headers["Content-Security-Policy"] = CSP
    # Stricter than the site's: no address leaves /manage, and no page frames it (as the
    # CSP's frame-ancestors 'none' says to browsers that read it).
    own_header("Referrer-Policy", "same-origin")
    own_header("X-Frame-Options", "DENY")
    response.headers["Cache-Control"] = "no-store"
    return response


LANGS = ("zh", "en")


def manage_lang() -> str:
    """``?lang=`` (remembered in the session), else the session's, else Accept-Language,
    else zh."""
    asked = (request.args.get("lang") or "").lower().split("-")[0]
    if asked in LANGS:
        session["lang"] = asked
        return asked
    if session.get("lang") in LANGS:
        return session["lang"]
    return request.accept_languages.best_match(LANGS) or "zh"


def strings() -> dict[str, str]:
    """The interface strings in this request's language."""
    if "mg_t" not in g:
        from ..i18n import strings as all_strings

        g.mg_lang = manage_lang()
        g.mg_t = all_strings(g.mg_lang)
    return g.mg_t


def lang() -> str:
    strings()
    return g.mg_lang


def tr(key: str, **values) -> str:
    """The message ``key`` in this request's language (Flask-Babel's gettext), its
    ``%(name)s`` placeholders filled from ``values``; a missing key shows itself."""
    import flask_babel

    return flask_babel.gettext(key, **values)


def trn(key: str, n: int, **values) -> str:
    """The count message ``key`` in the plural form for ``n`` (Flask-Babel's ngettext)."""
    import flask_babel

    return flask_babel.ngettext(key, key, n, n=n, **values)


# Parameters whose BadRequest has its own message (mg_err_param_<name>).
PARAM_MESSAGES = ("narrator_name", "narrator_age", "lang", "transcript", "title",
                  "consent_by", "consent", "file", "reason")


def error_text(exc: VoicemapError) -> str:
    """A service error in the page's language: by its code (``mg_err_<code>``), or for a
    generic bad request by the field it names (``mg_err_param_<param>``). The details the
    error carries (limits, durations) fill the message's placeholders; the API keeps the
    English message."""
    t = strings()
    details = dict(exc.details)
    param = details.get("param")
    key = f"mg_err_{exc.code}"
    if exc.code in ("bad_request", "no_consent"):
        # A generic code: the field says which message; else the service's own words.
        key = f"mg_err_param_{param}" if param in PARAM_MESSAGES else "mg_err_generic"
    if exc.code == "rate_limited" and request.endpoint == "manage.signin":
        key = "mg_err_rate_limited_auth"
    if key not in t:
        key = "mg_err_generic"
    values = {k: v for k, v in details.items() if isinstance(v, (int, float, str))}
    if "limit_bytes" in values:
        values["limit_mb"] = f"{values['limit_bytes'] / 1048576:.0f}"
    for name in ("max_duration_s", "min_duration_s", "duration_s"):
        values.setdefault(name, "?")
    values.setdefault("limit_mb", "?")
    values.setdefault("retry_after", "?")
    values["detail"] = exc.message
    try:
        return t[key] % values
    except (KeyError, TypeError, ValueError):
        return exc.message


def category_label(category_id: str) -> str:
    cat = categories.get(category_id)
    return cat.label(lang()) if cat else category_id


def venue_name(venue) -> str:
    """The venue's name in the page's language (the other one when it has none)."""
    first, second = (venue.name_zh, venue.name_en) if lang() == "zh" else (venue.name_en,
                                                                            venue.name_zh)
    return first or second


# A page shown in answer to a form (a refused upload, say) switches to the page the form
# was on.
FORM_PAGES = {"manage.upload": "manage.venue", "manage.replace": "manage.edit"}


def switch_url() -> str:
    """This page in the other language: the same address for a GET page; after a form, the
    page that holds the form (else the manage index)."""
    other = "en" if lang() == "zh" else "zh"
    endpoint = request.endpoint
    if endpoint is None:
        return url_for("manage.index", lang=other)
    if request.method != "GET":
        endpoint = FORM_PAGES.get(endpoint, endpoint)
        if not any("GET" in (rule.methods or ())
                   for rule in current_app.url_map.iter_rules(endpoint)):
            return url_for("manage.index", lang=other)
    args = request.args.to_dict()
    args["lang"] = other
    return url_for(endpoint, **(request.view_args or {}), **args)


@bp.app_context_processor
def inject():
    # csrf_token() in templates is Flask-WTF's generate_csrf (CSRFProtect adds it).
    if not has_request_context() or request.blueprint != "manage":
        return {}
    return {"t": strings(), "lang": lang(),
            "other_lang": "en" if lang() == "zh" else "zh", "switch_url": switch_url,
            "category_label": category_label, "venue_name": venue_name}


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


PER_PAGE = 20


@bp.get("/")
def index():
    manager = signed_in()
    if manager is None:
        return render_template("manage/signin.html")
    if policy.is_juror(manager):  # a juror's /manage is their judging page
        lang()  # a ?lang= given here is remembered before the redirect drops it
        return redirect(url_for("manage.judging_page"))
    s = db.get_session()
    pending = len(clips.pending(s)) if policy.is_admin(manager) else 0
    found = venues.search_managed(
        s, manager, q=request.args.get("q", ""), district=request.args.get("district") or None,
        category=request.args.get("category") or None, page=_page(),
        per_page=PER_PAGE)
    return render_template("manage/index.html", manager=manager,
                           counts=clips.counts_by_venue(s), found=found,
                           venues=found.venues, pending=pending,
                           districts=venues.districts(s, manager),
                           categories=categories.CATEGORIES, args=request.args)


def _page() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


@bp.post("/signin")
def signin():
    manager = authenticate_limited(db.get_session(), request.form.get("token", "").strip())
    if manager is None:
        return render_template("manage/signin.html", error=tr("mg_err_token")), 401
    chosen = session.get("lang")
    session.clear()  # a fresh session: no fixation
    if chosen in LANGS:
        session["lang"] = chosen  # the language is not a secret: keep it
    session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME
    session["manager_id"] = manager.id
    session["epoch"] = manager.session_epoch
    g.pop(current_app.config["WTF_CSRF_FIELD_NAME"], None)  # the cleared session's token
    generate_csrf()  # a new one for the new session
    return redirect(url_for("manage.index"))


@bp.post("/signout")
def signout():
    manager = signed_in()
    if manager is not None:
        auth.sign_out_everywhere(db.get_session(), manager)
    chosen = session.get("lang")
    session.clear()
    if chosen in LANGS:
        session["lang"] = chosen
    return redirect(url_for("manage.index"))


def _managed_venue(venue_id: str):
    place = venues.get(db.get_session(), venue_id)
    if not policy.can_manage_venue(signed_in(), venue_id):
        abort(403)
    return place


UPLOAD_FIELDS = ("narrator_name", "narrator_age", "lang", "title", "transcript", "consent_by",
                 "consent")


def _venue_page(place, form=None, error: str | None = None, param: str | None = None,
                status: int = 200):
    s = db.get_session()
    listed = clips.for_venue(s, place.id, signed_in())
    fresh = None
    fresh_id = request.args.get("uploaded")
    if fresh_id:
        fresh = next((c for c in listed if c.id == fresh_id), None)
        listed = [c for c in listed if c.id != fresh_id]
    return render_template("manage/venue.html", manager=signed_in(), venue=place,
                           clips=listed, fresh=fresh, form=form or {}, error=error,
                           param=param, plays=venue_plays(place.id, signed_in())), status


@bp.get("/venues/<venue_id>")
@login_required
def venue(venue_id: str):
    return _venue_page(_managed_venue(venue_id))


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
    """The upload form and the in-browser recorder both post here. A refused upload shows
    the form again with what was typed (not the file) and the reason in the page's
    language; the JSON answer (the recorder) carries the code and the translated text."""
    wants_json = request.accept_mimetypes.best == "application/json"
    count_upload(signed_in())  # over the limit: 429 page (or JSON), not a flash
    try:
        clip = attach_from_request(venue_id, signed_in())
    except VoicemapError as exc:
        db.get_session().rollback()
        if wants_json:
            return jsonify({**exc.to_dict(), "message": error_text(exc)}), exc.status
        if exc.status in (403, 404):
            raise
        form = {k: request.form.get(k, "") for k in UPLOAD_FIELDS}
        return _venue_page(_managed_venue(venue_id), form, error=error_text(exc),
                           param=exc.details.get("param") or (
                               "file" if exc.code in FILE_CODES else None),
                           status=exc.status)
    target = url_for("manage.venue", venue_id=venue_id, uploaded=clip.id)
    if wants_json:
        return jsonify({**clips.to_dict(clip, private=True), "page": target}), 201
    flash(tr("mg_uploaded", title=clip.title or clip.id), "ok")
    return redirect(target), 303


FILE_CODES = ("not_audio", "undecodable", "too_long", "too_short", "silent", "too_large",
              "empty")


@bp.get("/venues/<venue_id>/poster")
@login_required
def poster(venue_id: str):
    """The venue's printable A4 poster (names, category and the QR code to its page), the
    same page ``voicemap posters`` writes, as a download."""
    from .. import posters

    place = _managed_venue(venue_id)
    page = posters.poster_html(current_app, place.id, fallback_base=request.url_root)
    return Response(page, mimetype="text/html", headers={
        "Content-Disposition": f'attachment; filename="poster-{place.id}.html"'})


@bp.get("/venues/<venue_id>/qr.<any(svg, png):fmt>")
@login_required
def qr_code(venue_id: str, fmt: str):
    """The QR code to the venue's public page, as a file to download."""
    from .. import posters

    place = _managed_venue(venue_id)
    body, mimetype = posters.qr_file(current_app, place.id, fmt, fallback_base=request.url_root)
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="qr-{place.id}.{fmt}"'})


@bp.get("/clips/<clip_id>.mp3")
@login_required
def listen(clip_id: str):
    """The processed file of a clip the manager may see, published or not."""
    clip = clips.get_visible(db.get_session(), clip_id, signed_in())
    return send_media(media_store(), "published", clip.audio_sha256, mimetype="audio/mpeg",
                      missing=f"the file of clip {clip_id} is missing")


def _managed_clip(clip_id: str):
    """A clip the signed-in manager may change (404 if they cannot see it, 403 if they see it
    but do not manage its venue)."""
    clip = clips.get_visible(db.get_session(), clip_id, signed_in())
    if not policy.can_manage_clip(signed_in(), clip):
        abort(403)
    return clip


@bp.route("/clips/<clip_id>/delete", methods=["GET", "POST"])
@login_required
def delete(clip_id: str):
    """Deleting is permanent: GET shows a page naming the clip that asks to confirm; only
    its form (which carries ``confirm`` = the clip's id) deletes."""
    clip = _managed_clip(clip_id)
    if request.method == "GET" or request.form.get("confirm") != clip_id:
        return render_template("manage/delete.html", manager=signed_in(), clip=clip,
                               venue=clip.venue)
    venue_id, title = clip.venue_id, clip.title or clip.id
    clips.delete(db.get_session(), media_store(), clip_id, signed_in())
    flash(tr("mg_deleted", title=title), "ok")
    return redirect(url_for("manage.venue", venue_id=venue_id)), 303


@bp.route("/clips/<clip_id>/edit", methods=["GET", "POST"])
@login_required
def edit(clip_id: str):
    """Edit a clip's title and transcript; the page also replaces its audio."""
    clip = _managed_clip(clip_id)
    if request.method == "GET":
        return _edit_page(clip)
    try:
        clips.edit(db.get_session(), clip_id, signed_in(), request.form)
    except VoicemapError as exc:
        db.get_session().rollback()
        return _edit_page(clips.get(db.get_session(), clip_id), request.form,
                          error=error_text(exc), param=exc.details.get("param"),
                          status=exc.status)
    flash(tr("mg_saved"), "ok")
    return redirect(url_for("manage.venue", venue_id=clip.venue_id) + f"#clip-{clip_id}"), 303


def _edit_page(clip, form=None, error=None, param=None, status=200):
    return render_template("manage/edit.html", manager=signed_in(), clip=clip,
                           venue=clip.venue, form=form or {"title": clip.title or "",
                                                           "transcript": clip.transcript},
                           error=error, param=param), status


@bp.post("/clips/<clip_id>/replace")
@login_required
def replace(clip_id: str):
    """A new recording for the clip: it goes back to review (see clips.replace_audio)."""
    clip = _managed_clip(clip_id)
    count_upload(signed_in())
    try:
        replace_from_request(clip_id, signed_in())
    except VoicemapError as exc:
        db.get_session().rollback()
        return _edit_page(clips.get(db.get_session(), clip_id), error=error_text(exc),
                          param="file", status=exc.status)
    flash(tr("mg_replaced"), "ok")
    return redirect(url_for("manage.venue", venue_id=clip.venue_id, uploaded=clip_id)), 303


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
        db.get_session().rollback()
        flash(error_text(exc), "error")
    else:
        flash(tr("mg_published" if action == "publish" else "mg_rejected", id=clip_id), "ok")
    return redirect(url_for("manage.review")), 303


def _error_page(status: int, message: str):
    return render_template("manage/error.html", manager=signed_in() if status != 400 else None,
                           status=status, message=message), status


@bp.errorhandler(VoicemapError)
def voicemap_error(exc: VoicemapError):
    if exc.status >= 500:  # the application's handler logs and counts these
        app_handler = current_app.error_handler_spec[None][None].get(VoicemapError)
        if app_handler is not None:
            return app_handler(exc)
    if request.accept_mimetypes.best == "application/json":
        return jsonify({**exc.to_dict(), "message": error_text(exc)}), exc.status, exc.headers
    response = make_response(_error_page(exc.status, error_text(exc)))
    response.headers.update(exc.headers)
    return response


def http_error(exc: HTTPException):
    """400 (the CSRF check), 403, 404 and 413 as a page in the page's language; other HTTP
    errors go to the application's handlers."""
    code = exc.code or 500
    csrf_failed = isinstance(exc, CSRFError)
    key = {400: "mg_err_csrf" if csrf_failed else "mg_err_bad_request",
           403: "mg_err_forbidden", 404: "mg_err_not_found", 413: "mg_err_too_large"}[code]
    if request.accept_mimetypes.best == "application/json":
        return jsonify({"error": CSRF_REFUSED if csrf_failed else exc.description,
                        "code": key[7:], "message": tr(key)}), code
    limit = current_app.config.get("MAX_UPLOAD_BYTES") or 0
    return _error_page(code, tr(key, limit_mb=f"{limit / 1048576:.0f}"))


for _code in (400, 403, 404, 413):
    bp.register_error_handler(_code, http_error)
