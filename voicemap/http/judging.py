"""Judging over HTTP: the jurors' blind API (their works, their scores, the works' files),
the administrators' ranking, and the public results and exhibition pages.

A juror signs in with their token (``Authorization: Bearer``) or their /manage session;
everything a juror can fetch here is blind (``judging.blind_dict``).
"""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, request
from flask import session as cookie

from .. import auth, db, i18n, judging, policy, ranking
from .. import works as works_service
from ..errors import NotFound
from ..storage import media_store
from .clips import current_manager
from .media import send_media
from .works import page

bp = Blueprint("judging", __name__)


def principal():
    """The bearer token's manager, else (for reading only: a session cookie is no defence
    against a forged write) the /manage session's, else None."""
    found = current_manager()
    if found is None and request.method in ("GET", "HEAD"):
        found = auth.session_manager(db.get_session(), cookie.get("manager_id"),
                                     cookie.get("epoch"))
    return found


@bp.get("/api/judging/<campaign_id>/works")
def juror_works(campaign_id: str):
    """The works a juror judges, blind, each with the juror's own scores, and progress."""
    view = judging.juror_view(db.get_session(), principal(), campaign_id)
    root = request.script_root
    return jsonify(campaign=view.campaign.id, status=view.campaign.status,
                   criteria=[{"name": n, "weight": w} for n, w in judging.criteria(
                       view.campaign)],
                   total=len(view.works), scored=view.scored,
                   works=[judging.blind_dict(w, root, view.mine.get(w.id))
                          for w in view.works])


@bp.get("/api/works/<work_id>/scores")
def get_scores(work_id: str):
    return jsonify(judging.scores_of(db.get_session(), principal(), work_id))


@bp.put("/api/works/<work_id>/scores")
def put_scores(work_id: str):
    row = judging.put_scores(db.get_session(), principal(), work_id,
                             request.get_json(silent=True))
    return jsonify(work_id=row.work_id, scores=json.loads(row.scores),
                   weighted=round(row.weighted, 4))


@bp.get("/api/judging/media/<work_id>/<any(thumb, display, song.mp3):which>")
def media(work_id: str, which: str):
    """A judged work's rendition or song, for its campaign's jurors and administrators."""
    work = judging.media_work(db.get_session(), principal(), work_id)
    missing = f"no file for work {work_id!r}"
    if which == "song.mp3":
        if not work.audio_sha256:
            raise NotFound(missing)
        resp = send_media(media_store(), "published", work.audio_sha256,
                          mimetype="audio/mpeg", missing=missing)
    else:
        sha = getattr(work, f"{which}_sha256")
        if not sha:
            raise NotFound(missing)
        resp = send_media(media_store(), "renditions", sha,
                          mimetype=getattr(work, f"{which}_type"), missing=missing)
    resp.cache_control.public = False
    resp.cache_control.private = True
    resp.cache_control.no_store = True
    resp.headers["Content-Security-Policy"] = "default-src 'none'"
    return resp


@bp.get("/api/campaigns/<campaign_id>/ranking")
def ranking_table(campaign_id: str):
    """The full results table (administrators): every judged work, ranked per group."""
    policy.require_admin(principal())
    entries = judging.results(db.get_session(), campaign_id)
    return jsonify(campaign=campaign_id, ties="standard competition ranking (1, 2, 2, 4): "
                   "equal scores share a rank", results=[judging.entry_dict(e)
                                                         for e in entries])


@bp.get("/api/campaigns/<campaign_id>/results")
def results(campaign_id: str):
    """The published results (public): award winners per kind and age group."""
    return jsonify(judging.public_results(db.get_session(), campaign_id,
                                          request.script_root))


# --- public pages ---------------------------------------------------------------------------


def _not_yet(campaign_id: str):
    """404 page for a campaign whose results are not published (NotFound if no campaign)."""
    campaign = works_service.get_campaign(db.get_session(), campaign_id)
    return page("judging/not_published.html", 404, campaign=campaign)


@bp.get("/campaigns/<campaign_id>/results")
def results_page(campaign_id: str):
    try:
        data = judging.public_results(db.get_session(), campaign_id, request.script_root)
    except NotFound:
        return _not_yet(campaign_id)
    campaign = works_service.get_campaign(db.get_session(), campaign_id)
    return page("judging/results.html", data=data, campaign=campaign,
                awards=ranking.AWARDS)


@bp.get("/campaigns/<campaign_id>/exhibition")
def exhibition_page(campaign_id: str):
    try:
        campaign, found = judging.exhibition(db.get_session(), campaign_id)
    except NotFound:
        return _not_yet(campaign_id)
    interval = max(5, min(request.args.get("interval", 12, type=int) or 12, 120))

    both = {"zh": i18n.strings("zh"), "en": i18n.strings("en")}
    slides = [{"w": w, "d": works_service.to_dict(w, root=request.script_root)}
              for w in found]
    return page("judging/exhibition.html", campaign=campaign, slides=slides, both=both,
                interval=interval)
