"""/manage for judging: the jurors' judging page (one work at a time, blind, tablet-sized,
keyboard shortcuts, progress) and the administrators' judging settings, results table,
awards and publication. Routes on the /manage blueprint (its sign-in, CSRF, headers and
language: every word shown is an ``mg_judge_`` string of the page's language, the default
criteria, statuses and awards by their labels; a custom criterion shows its id)."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for

from .. import db, judging, policy, ranking
from .. import works as works_service
from ..errors import VoicemapError
from .manage import bp, error_text, login_required, signed_in, strings, tr, trn
from .manage_works import _admin


def criterion_label(name: str) -> str:
    """A criterion's label in the page's language: the default ones (creativity,
    expression, city) have one; a campaign's own criterion shows its id."""
    return strings().get(f"mg_judge_crit_{name}", name)


def award_label(award: str | None) -> str:
    return tr(f"judge_award_{award}") if award in ranking.AWARDS else tr("mg_judge_no_award")


def _listed(items) -> str:
    return tr("mg_judge_list_sep").join(items)


def criteria_text(campaign) -> str:
    """The campaign's criteria and weights, such as "Creativity 40, Expression 30"."""
    try:
        found = judging.criteria(campaign)
    except VoicemapError:  # stored before the checks: shown as it is
        return campaign.criteria
    return _listed(f"{criterion_label(n)} {w:g}" for n, w in found)


def plan_text(campaign) -> str:
    """The award plan, such as "Gold award × 1, Silver award × 1"."""
    try:
        plan = ranking.parse_award_plan(campaign.award_plan)
    except VoicemapError:
        return campaign.award_plan
    return _listed(trn("mg_judge_plan_item", n, award=award_label(a)) for a, n in plan) \
        or tr("mg_judge_plan_none")


def status_label(status: str) -> str:
    return strings().get(f"mg_cstatus_{status}", status)


def judging_error(exc: VoicemapError, campaign=None, body: dict | None = None,
                  work_id: str | None = None) -> str:
    """A judging service's refusal in the page's language: the criterion it names (by its
    label), the settings' fields, the campaign's status; else manage's ``error_text``."""
    param = exc.details.get("param")
    if exc.code == "not_judging" and campaign is not None:
        key = "mg_judge_closed" if body is not None else "mg_judge_err_awarding_early"
        return tr(key, status=status_label(campaign.status))
    if body is not None and param:
        if param not in (n for n, _ in judging.criteria(campaign)):
            return tr("mg_judge_err_unknown", criterion=param)
        if param not in body:
            return tr("mg_judge_err_missing", criterion=criterion_label(param))
        return tr("mg_judge_err_range", criterion=criterion_label(param),
                  min=ranking.MIN_SCORE, max=ranking.MAX_SCORE)
    if param == "criteria":
        return tr("mg_judge_err_criteria_fixed" if exc.code == "conflict"
                  else "mg_judge_err_criteria")
    if param == "awards":
        return tr("mg_judge_err_award_plan")
    if param == "min_jurors":
        return tr("mg_judge_err_min_jurors")
    if param == "award":
        return tr("mg_judge_err_award", awards=_listed(award_label(a) for a in ranking.AWARDS))
    if param == "work":
        return tr("mg_judge_err_not_judged", id=work_id)
    if exc.code == "not_found" and work_id:
        return tr("mg_judge_err_no_work", id=work_id)
    return error_text(exc)


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
        criteria=judging.criteria(view.campaign), criterion_label=criterion_label,
        status_label=status_label,
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
        flash(judging_error(exc, view.campaign, body, work_id), "error")
        return redirect(url_for("manage.judging_page", work=work_id)), 303
    view = judging.juror_view(session, juror)
    nxt = _next_unscored(view, work_id)
    flash(tr("mg_judge_saved", scored=view.scored, total=len(view.works)), "ok")
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
        flash(judging_error(exc), "error")
    else:
        flash(tr("mg_judge_settings_saved", id=campaign_id), "ok")
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
                           published=judging.published(campaign), award_label=award_label,
                           status_label=status_label, criteria=criteria_text(campaign),
                           plan=plan_text(campaign))


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
    work_id = request.form.get("work", "")
    try:
        if action == "award":
            w = judging.award(session, campaign_id, work_id, request.form.get("award"))
            flash(tr("mg_judge_awarded", id=w.id, award=award_label(w.award)), "ok")
        elif action == "autoaward":
            given = judging.auto_award(session, campaign_id)
            flash(trn("mg_judge_autoawarded", sum(1 for a in given.values() if a)), "ok")
        else:
            judging.publish(session, campaign_id)
            flash(tr("mg_judge_published", id=campaign_id), "ok")
    except VoicemapError as exc:
        session.rollback()
        campaign = works_service.find_campaign(session, campaign_id)
        flash(judging_error(exc, campaign, work_id=work_id if action == "award" else None),
              "error")
    return redirect(url_for("manage.campaign_results", campaign_id=campaign_id)), 303
