"""/manage for judging: the jurors' judging page (one work at a time, blind, tablet-sized,
keyboard shortcuts, progress) and the administrators' judging settings, results table,
awards and publication. Routes on the /manage blueprint (its sign-in, CSRF and headers)."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for

from .. import db, judging, policy, ranking
from .. import works as works_service
from ..errors import VoicemapError
from .manage import bp, login_required, signed_in
from .manage_works import _admin

LABELS = {"creativity": "创意 Creativity", "expression": "表达 Expression",
          "city": "与城市的联系 Connection to the city"}


def _juror():
    manager = signed_in()
    if not policy.is_juror(manager):
        abort(403)
    return manager


def _next_unscored(view: judging.JurorView, after: str | None) -> str | None:
    ids = [w.id for w in view.works]
    start = ids.index(after) + 1 if after in ids else 0
    for wid in ids[start:] + ids[:start]:
        if wid not in view.mine:
            return wid
    return None


@bp.get("/judging")
@login_required
def judging_page():
    """One work at a time: ``?work=ID``, else the first not yet scored."""
    view = judging.juror_view(db.get_session(), _juror())
    ids = [w.id for w in view.works]
    current = request.args.get("work") or _next_unscored(view, None) or (ids[0] if ids
                                                                        else None)
    if current is not None and current not in ids:
        abort(404)
    i = ids.index(current) if current else -1
    work = view.works[i] if current else None
    return render_template(
        "manage/judging.html", manager=signed_in(), view=view, work=work, index=i,
        blind=judging.blind_dict(work, request.script_root) if work else None,
        mine=view.mine.get(current) if current else None,
        criteria=judging.criteria(view.campaign), labels=LABELS,
        prev_id=ids[i - 1] if i > 0 else None,
        next_id=ids[i + 1] if 0 <= i < len(ids) - 1 else None,
        steps=list(range(ranking.MIN_SCORE, ranking.MAX_SCORE + 1)))


@bp.post("/judging/<work_id>")
@login_required
def judging_save(work_id: str):
    juror = _juror()
    session = db.get_session()
    view = judging.juror_view(session, juror)
    body = {}
    for name, _ in judging.criteria(view.campaign):
        raw = request.form.get(name, "").strip()
        try:
            body[name] = float(raw) if "." in raw else int(raw)
        except ValueError:
            body[name] = raw or None
        if body[name] is None:
            del body[name]
    try:
        judging.put_scores(session, juror, work_id, body)
    except VoicemapError as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("manage.judging_page", work=work_id)), 303
    view = judging.juror_view(session, juror)
    nxt = _next_unscored(view, work_id)
    flash(f"已保存 Saved · {view.scored} / {len(view.works)}", "ok")
    return redirect(url_for("manage.judging_page", work=nxt or work_id)), 303


# --- administrators --------------------------------------------------------------------------


@bp.post("/campaigns/<campaign_id>/judging")
@login_required
def campaign_judging(campaign_id: str):
    _admin()
    f = request.form
    try:
        judging.configure(db.get_session(), campaign_id, criteria=f.get("criteria"),
                          award_plan=f.get("award_plan"),
                          min_jurors=f.get("min_jurors", type=int),
                          judge_pending=f.get("judge_pending") == "on")
    except VoicemapError as exc:
        db.get_session().rollback()
        flash(exc.message, "error")
    else:
        flash(f"Campaign {campaign_id}: judging settings saved.", "ok")
    return redirect(url_for("manage.campaigns")), 303


@bp.get("/campaigns/<campaign_id>/results")
@login_required
def campaign_results(campaign_id: str):
    _admin()
    session = db.get_session()
    campaign = works_service.get_campaign(session, campaign_id, public=False)
    entries = [judging.entry_dict(e) for e in judging.results(session, campaign_id)]
    return render_template("manage/results.html", manager=signed_in(), campaign=campaign,
                           entries=entries, awards=ranking.AWARDS,
                           published=judging.published(campaign))


@bp.get("/campaigns/<campaign_id>/results.csv")
@login_required
def campaign_results_csv(campaign_id: str):
    _admin()
    entries = judging.results(db.get_session(), campaign_id)
    return Response(judging.csv_text(entries), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{campaign_id}-results.csv"'})


@bp.post("/campaigns/<campaign_id>/<any(award, autoaward, publish):action>")
@login_required
def campaign_award(campaign_id: str, action: str):
    _admin()
    session = db.get_session()
    try:
        if action == "award":
            w = judging.award(session, campaign_id, request.form.get("work", ""),
                              request.form.get("award"))
            flash(f"Work {w.id}: {w.award or 'no award'}.", "ok")
        elif action == "autoaward":
            given = judging.auto_award(session, campaign_id)
            flash(f"{sum(1 for a in given.values() if a)} award(s) given by the plan.", "ok")
        else:
            judging.publish(session, campaign_id)
            flash(f"Results of {campaign_id} published; the campaign is closed.", "ok")
    except VoicemapError as exc:
        session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("manage.campaign_results", campaign_id=campaign_id)), 303
