"""Campaigns and children's works: the JSON API, the media of public works, and the family
pages (submission, receipt, withdrawal, gallery, one page per work).

Anything that is not public (pending, rejected, flagged, or without public consent) is 404
here on every path: API, pages, renditions, song, map data.
"""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import segno
from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for

from .. import db, i18n, policy, venues
from .. import works as service
from ..errors import BadRequest, Conflict, NotFound, Unauthorized, VoicemapError
from ..limits import submit_limit
from ..storage import media_store
from .api import integer
from .clips import current_manager, limits, save_upload
from .media import send_media
from .pages import choose_lang, send

bp = Blueprint("works", __name__)

# The pages' own policy: the map's, plus blob: for the recorder's preview and the chosen
# photo's preview. No inline script.
CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
       "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
MEDIA_MAX_AGE = 3600  # renditions may change state (withdrawn): an hour, and private


def _root() -> str:
    return request.script_root


def public_url(path: str) -> str:
    """An absolute address for QR codes and link previews (PUBLIC_URL, else this host)."""
    base = (current_app.config.get("PUBLIC_URL") or request.url_root).rstrip("/")
    return f"{base}{path}"


# --- JSON API ------------------------------------------------------------------------------


@bp.get("/api/campaigns")
def campaigns():
    found = service.list_campaigns(db.get_session())
    return jsonify(campaigns=[service.campaign_to_dict(c) for c in found])


@bp.get("/api/campaigns/<campaign_id>")
def campaign(campaign_id: str):
    return jsonify(service.campaign_to_dict(service.get_campaign(db.get_session(),
                                                                 campaign_id)))


def submit_from_request(campaign_id: str) -> tuple[Any, str]:
    """The one path from a multipart request to a stored work (API and page share it)."""
    session = db.get_session()
    found = service.get_campaign(session, campaign_id)
    if not service.accepting(found):
        raise Conflict(f"campaign {campaign_id!r} is not open for submissions (status "
                       f"{found.status})", code="campaign_not_open")
    session.commit()  # no transaction held while a slow phone sends its body
    if not request.form and not request.files:
        raise BadRequest("send the work as multipart/form-data with the fields kind, title, "
                         "narrator_name, narrator_age, story, consent_by, guardian_contact, "
                         "consent_judging, consent_public and file")
    # The page has several file inputs (picker, camera, song): the first one chosen counts.
    chosen = [f for f in request.files.getlist("file")
              if f.filename or f.mimetype.startswith(("image/", "audio/", "video/"))]
    upload = chosen[0] if chosen else None
    store = media_store()
    cfg = current_app.config
    with store.scratch("submit-") as work_dir:
        path = None
        if upload is not None:
            path = save_upload(upload, work_dir, cfg["MAX_UPLOAD_BYTES"])
            if path.stat().st_size == 0:
                path.unlink()
                path = None
        return service.submit(session, store, campaign_id, request.form, path,
                              audio_limits=limits(), service_area=tuple(cfg["SERVICE_AREA"]))


@bp.post("/api/campaigns/<campaign_id>/works")
@submit_limit
def submit(campaign_id: str):
    work, code = submit_from_request(campaign_id)
    return jsonify(id=work.id, status=work.status, withdraw_code=code,
                   receipt=f"{_root()}/works/withdraw?work={work.id}"), 201


@bp.delete("/api/works/<work_id>")
def remove(work_id: str):
    code = request.headers.get("X-Withdraw-Code")
    session = db.get_session()
    if code:
        service.withdraw(session, media_store(), work_id, code)
        return "", 204
    manager = current_manager()
    if manager is None:
        raise Unauthorized("send the withdrawal code as X-Withdraw-Code, or an "
                           "administrator's token")
    policy.require_admin(manager)
    service.erase(session, media_store(), work_id)
    return "", 204


@bp.post("/api/works/<work_id>/<any(approve, reject, flag):action>")
def decide(work_id: str, action: str):
    admin = policy.require_admin(current_manager())
    body = request.get_json(silent=True)
    reason = body.get("reason") if isinstance(body, dict) else request.form.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise BadRequest("reason must be text", param="reason")
    work = service.review(db.get_session(), work_id, admin, action, reason)
    return jsonify(service.to_dict(work, private=True, root=_root()))


@bp.get("/api/works/review")
def review_queue():
    policy.require_admin(current_manager())
    status = request.args.get("status", "pending")
    found = service.review_queue(db.get_session(), None if status == "all" else status)
    return jsonify(works=[service.to_dict(w, private=True, root=_root()) for w in found])


def _filters() -> dict[str, Any]:
    args = request.args
    return {name: (args.get(name) or None) for name in
            ("campaign", "kind", "age_group", "venue", "award")}


@bp.get("/api/works")
def works():
    page = service.public_works(db.get_session(), **_filters(), page=integer("page", 1))
    return jsonify(works=[service.to_dict(w, root=_root()) for w in page.works],
                   total=page.total, page=page.page, pages=page.pages)


@bp.get("/api/works/<work_id>")
def work(work_id: str):
    return jsonify(service.to_dict(service.get_public(db.get_session(), work_id),
                                   root=_root()))


@bp.get("/api/map/works")
def map_works():
    """Public works with a point, compact, for the map's "Children's works" layer."""
    body = json.dumps({"works": service.map_rows(db.get_session())}, ensure_ascii=False,
                      separators=(",", ":")).encode()
    return send(body, "application/json",
                gzip.compress(body, 6, mtime=0) if len(body) > 1400 else None,
                **{"Cache-Control": "public, max-age=30"})


# --- media of public works ------------------------------------------------------------------


@bp.get("/media/works/<work_id>/<any(thumb, display, song.mp3):which>")
def media(work_id: str, which: str):
    found = service.get_public(db.get_session(), work_id)
    missing = f"no work with id {work_id!r}"
    if which == "song.mp3":
        if not found.audio_sha256:
            raise NotFound(missing)
        resp = send_media(media_store(), "published", found.audio_sha256,
                          mimetype="audio/mpeg", missing=missing, max_age=MEDIA_MAX_AGE)
    else:
        sha = getattr(found, f"{which}_sha256")
        if not sha:
            raise NotFound(missing)
        resp = send_media(media_store(), "renditions", sha, mimetype=getattr(
            found, f"{which}_type"), missing=missing, max_age=MEDIA_MAX_AGE)
    # private: no shared cache keeps a copy after a withdrawal
    resp.cache_control.public = False
    resp.cache_control.private = True
    resp.headers["Content-Security-Policy"] = "default-src 'none'"
    return resp


# --- pages ---------------------------------------------------------------------------------


def page(template: str, status: int = 200, **context: Any) -> Response:
    lang = choose_lang()

    t = i18n.strings(lang)
    html = render_template(template, t=t, lang=lang, other="en" if lang == "zh" else "zh",
                           **context)
    resp = Response(html, status, mimetype="text/html",
                    headers={"Content-Language": lang, "Content-Security-Policy": CSP})
    if "lang" not in request.args:
        resp.vary.add("Accept-Language")
    return resp


def _submit_context(campaign_id: str) -> dict[str, Any]:
    session = db.get_session()
    found = service.get_campaign(session, campaign_id)
    places = venues.names(session)
    closes = service.campaign_to_dict(found)["closes"][:16].replace("T", " ")
    return {"campaign": found, "accepting": service.accepting(found), "closes": closes,
            "districts": service.DISTRICTS, "venues": places}


@bp.get("/campaigns/<campaign_id>/submit")
def submit_page(campaign_id: str):
    return page("works/submit.html", **_submit_context(campaign_id), form={}, error=None)


@bp.post("/campaigns/<campaign_id>/submit")
@submit_limit
def submit_form(campaign_id: str):
    """The page's form without script: the receipt, or the form again naming the problem."""
    try:
        work_row, code = submit_from_request(campaign_id)
    except VoicemapError as exc:
        if exc.status >= 500 or isinstance(exc, NotFound):
            raise
        db.get_session().rollback()
        return page("works/submit.html", exc.status, **_submit_context(campaign_id),
                    form=request.form, error=exc)
    resp = page("works/receipt.html", 201, work=work_row, code=code,
                campaign=service.get_campaign(db.get_session(), campaign_id))
    resp.headers["Cache-Control"] = "no-store"  # the code is shown once
    return resp


@bp.route("/works/withdraw", methods=["GET", "POST"])
def withdraw_page():
    if request.method == "GET":
        return page("works/withdraw.html", work_id=request.args.get("work", ""), done=False,
                    error=None)
    work_id = (request.form.get("work") or "").strip()
    try:
        if not work_id:
            raise BadRequest("give the work's number from the receipt", param="work")
        service.withdraw(db.get_session(), media_store(), work_id,
                         request.form.get("code") or "")
    except (BadRequest, NotFound) as exc:
        return page("works/withdraw.html", exc.status, work_id=work_id, done=False,
                    error=exc)
    resp = page("works/withdraw.html", work_id=work_id, done=True, error=None)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/works")
def gallery():
    session = db.get_session()
    filters = _filters()
    found = service.public_works(session, **filters, page=max(integer("page", 1), 1))
    return page("works/gallery.html", page_=found, filters=filters,
                campaigns=service.list_campaigns(session), kinds=service.KINDS,
                age_groups=_age_groups(session))


def _age_groups(session) -> list[str]:
    groups: set[str] = set()
    for c in service.list_campaigns(session):
        groups.update(c.age_groups.split(","))
    return sorted(groups, key=lambda g: int(g.split("-")[0]))


@bp.get("/works/<work_id>")
def work_page(work_id: str):
    session = db.get_session()
    try:
        found = service.get_public(session, work_id)
    except NotFound:
        return page("works/missing.html", 404)
    return page("works/work.html", w=found, d=service.to_dict(found, root=_root()),
                url=public_url(f"/works/{work_id}"), image_url=(
                    public_url(f"/media/works/{work_id}/display")
                    if found.display_sha256 else None),
                campaign=found.campaign,
                qr_svg=url_for("works.work_qr", work_id=work_id))


@bp.get("/works/<work_id>/qr.svg")
def work_qr(work_id: str):
    service.get_public(db.get_session(), work_id)
    target = public_url(f"/works/{work_id}")
    qr = segno.make(target, error="m")
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=4, border=2, xmldecl=False, title=target)
    resp = Response(out.getvalue(), mimetype="image/svg+xml", headers={
        "Cache-Control": "private, max-age=3600",
        "Content-Security-Policy": "default-src 'none'"})
    if not current_app.config.get("PUBLIC_URL"):
        resp.vary.add("Host")
    return resp
