"""/manage for children's works: administrators review works (the image, text, player and
the private consent record) and manage campaigns. Routes on the /manage blueprint, so they
share its session sign-in, CSRF check and headers."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from .. import db
from .. import works as service
from ..errors import VoicemapError
from ..storage import media_store
from .manage import bp, error_text, login_required, signed_in, tr
from .media import send_media


def _admin():
    manager = signed_in()
    if not manager.is_admin:
        abort(403)
    return manager


@bp.get("/works")
@login_required
def works():
    _admin()
    status = request.args.get("status", "pending")
    if status not in (*service.WORK_STATUSES, "all"):
        abort(400)
    found = service.review_queue(db.get_session(), None if status == "all" else status)
    return render_template("manage/works.html", manager=signed_in(), works=found,
                           status=status, statuses=(*service.WORK_STATUSES, "all"))


@bp.get("/works/<work_id>/<any(thumb, display, song.mp3):which>")
@login_required
def work_media(work_id: str, which: str):
    """Any work's rendition or song, public or not, for review."""
    _admin()
    work = service.get(db.get_session(), work_id)
    if which == "song.mp3":
        if not work.audio_sha256:
            abort(404)
        return send_media(media_store(), "published", work.audio_sha256,
                          mimetype="audio/mpeg", missing="the song's file is missing")
    sha = getattr(work, f"{which}_sha256")
    if not sha:
        abort(404)
    return send_media(media_store(), "renditions", sha, mimetype=getattr(work, f"{which}_type"),
                      missing="the image's file is missing")


@bp.post("/works/<work_id>/<any(approve, reject, flag, erase):action>")
@login_required
def work_decide(work_id: str, action: str):
    admin = _admin()
    try:
        if action == "erase":
            service.erase(db.get_session(), media_store(), work_id)
        else:
            service.review(db.get_session(), work_id, admin, action, request.form.get("reason"))
    except VoicemapError as exc:
        flash(error_text(exc), "error")
    else:
        flash(tr("mg_works_done", id=work_id, action=tr(f"mg_waction_{action}")), "ok")
    return redirect(url_for("manage.works", status=request.args.get("status", "pending"))), 303


@bp.get("/campaigns")
@login_required
def campaigns():
    _admin()
    return render_template("manage/campaigns.html", manager=signed_in(),
                           campaigns=service.list_campaigns(db.get_session(), public=False),
                           kinds=service.KINDS, statuses=service.CAMPAIGN_STATUSES,
                           groups=",".join(service.DEFAULT_AGE_GROUPS))


@bp.post("/campaigns")
@login_required
def campaign_create():
    _admin()
    f = request.form
    try:
        c = service.create_campaign(
            db.get_session(), f.get("id", ""), title_zh=f.get("title_zh", ""),
            title_en=f.get("title_en", ""), opens=f.get("opens", ""),
            closes=f.get("closes", ""), kinds=f.getlist("kinds"),
            age_groups=f.get("age_groups"), description_zh=f.get("description_zh"),
            description_en=f.get("description_en"), status=f.get("status", "draft"),
            criteria=f.get("criteria"))
    except VoicemapError as exc:
        flash(error_text(exc), "error")
    else:
        flash(tr("mg_camp_created", id=c.id, status=tr(f"mg_cstatus_{c.status}")), "ok")
    return redirect(url_for("manage.campaigns")), 303


@bp.post("/campaigns/<campaign_id>/status")
@login_required
def campaign_status(campaign_id: str):
    _admin()
    try:
        c = service.set_status(db.get_session(), campaign_id, request.form.get("status", ""))
    except VoicemapError as exc:
        flash(error_text(exc), "error")
    else:
        flash(tr("mg_camp_now", id=c.id, status=tr(f"mg_cstatus_{c.status}")), "ok")
    return redirect(url_for("manage.campaigns")), 303
