"""Judging a campaign: jurors score works blind, results are ranked per (kind, age group),
administrators give awards, the results are published, and the award winners are exhibited.

A juror (a manager with ``juror_campaign_id``) sees only their campaign's works that the
guardian let be judged (``consent_judging``): approved ones, flagged ones included, and those
still pending review if the campaign allows it (``judge_pending``); rejected works never.
They see them blind (:func:`blind_dict`: kind, age group, title, the work and its story; no
name, age, district, place or guardian data), and read back only their own scores.

Scores are taken while the campaign is ``judging`` (Conflict otherwise). The arithmetic is
:mod:`voicemap.ranking`'s. Awards are public only once the results are published
(``publish``: status ``closed``); before that no public path shows them.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from . import policy, ranking
from . import works as works_service
from .errors import BadRequest, Conflict, NotFound
from .models import Campaign, Manager, Score, Work, utcnow

HIDDEN_NOTE = "award winner (not shown at the family's request)"
AWARD_ORDER = {a: i for i, a in enumerate(ranking.AWARDS)}
CSV_COLUMNS = ("rank", "work_id", "kind", "age_group", "score", "jurors", "spread",
               "too_few_jurors", "award", "title", "status", "flagged", "public")


def criteria(campaign: Campaign) -> list[tuple[str, float]]:
    return ranking.parse_criteria(campaign.criteria)


def configure(session: Session, campaign_id: str, *, criteria: str | None = None,
              award_plan: str | None = None, min_jurors: int | None = None,
              judge_pending: bool | None = None) -> Campaign:
    """Change a campaign's judging settings, committed. The criteria cannot change once a
    work has been scored (the scores would no longer mean the same)."""
    campaign = works_service.get_campaign(session, campaign_id, public=False)
    if criteria is not None:
        parsed = ranking.format_criteria(ranking.parse_criteria(criteria))
        if parsed != campaign.criteria and _has_scores(session, campaign.id):
            raise Conflict("the criteria cannot change once works have been scored",
                           param="criteria")
        campaign.criteria = parsed
    if award_plan is not None:
        campaign.award_plan = ranking.format_award_plan(ranking.parse_award_plan(award_plan))
    if min_jurors is not None:
        if not (1 <= int(min_jurors) <= 50):
            raise BadRequest("min_jurors must be from 1 to 50", param="min_jurors")
        campaign.min_jurors = int(min_jurors)
    if judge_pending is not None:
        campaign.judge_pending = bool(judge_pending)
    session.commit()
    return campaign


def _has_scores(session: Session, campaign_id: str) -> bool:
    return session.execute(select(Score.id).join(Work, Work.id == Score.work_id)
                           .where(Work.campaign_id == campaign_id).limit(1)).first() is not None


# --- what a juror sees ----------------------------------------------------------------------


def eligible_clause(campaign: Campaign):
    """The SQL condition for a work the jury judges."""
    statuses = ["approved", "pending"] if campaign.judge_pending else ["approved"]
    return (Work.campaign_id == campaign.id, Work.consent_judging.is_(True),
            Work.status.in_(statuses))


def is_eligible(campaign: Campaign, work: Work) -> bool:
    statuses = ("approved", "pending") if campaign.judge_pending else ("approved",)
    return (work.campaign_id == campaign.id and work.consent_judging
            and work.status in statuses)


def juror_campaign(session: Session, juror: Manager | None, campaign_id: str | None = None
                   ) -> Campaign:
    """The juror's campaign (Forbidden for anyone else, or for another campaign's id)."""
    juror = policy.require_juror(juror, campaign_id)
    return works_service.get_campaign(session, juror.juror_campaign_id, public=False)


@dataclass
class JurorView:
    campaign: Campaign
    works: list[Work]
    mine: dict[str, dict[str, float]]  # work id -> this juror's scores

    @property
    def scored(self) -> int:
        return sum(1 for w in self.works if w.id in self.mine)


def juror_view(session: Session, juror: Manager | None,
               campaign_id: str | None = None) -> JurorView:
    """The works a juror judges (grouped by kind and age group, then oldest first) and their
    own scores."""
    campaign = juror_campaign(session, juror, campaign_id)
    kinds = {k: i for i, k in enumerate(campaign.kinds.split(","))}
    groups = {g: i for i, g in enumerate(campaign.age_groups.split(","))}
    found = list(session.execute(select(Work).where(*eligible_clause(campaign))).scalars())
    found.sort(key=lambda w: (kinds.get(w.kind, 99), groups.get(w.age_group, 99),
                              w.submitted_at, w.id))
    mine = {s.work_id: json.loads(s.scores) for s in session.execute(
        select(Score).join(Work, Work.id == Score.work_id)
        .where(Score.juror_id == juror.id, Work.campaign_id == campaign.id)).scalars()}
    return JurorView(campaign, found, mine)


def juror_work(session: Session, juror: Manager | None, work_id: str) -> Work:
    """A work this juror may judge: Forbidden if it is another campaign's (or the principal
    is no juror), NotFound if the jury does not see it."""
    policy.require_signed_in(juror)
    work = works_service.get(session, work_id)
    campaign = juror_campaign(session, juror, work.campaign_id)
    if not is_eligible(campaign, work):
        raise NotFound(f"no work with id {work_id!r} to judge")
    return work


def media_work(session: Session, principal: Manager | None, work_id: str) -> Work:
    """A work whose files a juror of its campaign (or an administrator) may fetch."""
    if policy.is_admin(principal):
        return works_service.get(session, work_id)
    return juror_work(session, principal, work_id)


def blind_dict(work: Work, root: str = "", mine: dict[str, float] | None = None
               ) -> dict[str, Any]:
    """A work as a juror sees it: kind, age group, title, the work and its story, nothing
    that says who made it or where they live."""
    base = f"{root}/api/judging/media/{work.id}"
    return {"id": work.id, "kind": work.kind, "age_group": work.age_group,
            "title": work.title, "story": work.story,
            "thumb_url": f"{base}/thumb" if work.thumb_sha256 else None,
            "display_url": f"{base}/display" if work.display_sha256 else None,
            "audio_url": f"{base}/song.mp3" if work.audio_sha256 else None,
            "width": work.display_width, "height": work.display_height,
            "duration_ms": work.duration_ms, "my_scores": mine}


# --- scoring --------------------------------------------------------------------------------


def put_scores(session: Session, juror: Manager | None, work_id: str, body: Any) -> Score:
    """Record or replace this juror's scores of a work, committed.

    :raises: Unauthorized/Forbidden (not a juror of this work's campaign), NotFound (the
        jury does not see it), Conflict (the campaign is not in ``judging``), BadRequest
        naming the criterion.
    """
    work = juror_work(session, juror, work_id)
    campaign = work.campaign
    if campaign.status != "judging":
        raise Conflict(f"campaign {campaign.id!r} is not being judged (status "
                       f"{campaign.status}): scores are taken only while it is 'judging'",
                       code="not_judging")
    crit = criteria(campaign)
    values = ranking.check_scores(crit, body)
    row = session.execute(select(Score).where(Score.work_id == work.id,
                                              Score.juror_id == juror.id)).scalar_one_or_none()
    if row is None:
        row = Score(work_id=work.id, juror_id=juror.id)
        session.add(row)
    row.scores = json.dumps(values, separators=(",", ":"))
    row.weighted = ranking.weighted(crit, values)
    row.updated_at = utcnow()
    session.commit()
    return row


def scores_of(session: Session, principal: Manager | None, work_id: str) -> dict[str, Any]:
    """A juror's own scores of a work; for an administrator every juror's."""
    if policy.is_admin(principal):
        work = works_service.get(session, work_id)
        rows = session.execute(select(Score).where(Score.work_id == work.id)
                               .order_by(Score.juror_id)).scalars()
        return {"work_id": work.id, "scores": [
            {"juror_id": r.juror_id, "scores": json.loads(r.scores),
             "weighted": round(r.weighted, 4)} for r in rows]}
    work = juror_work(session, principal, work_id)
    row = session.execute(select(Score).where(Score.work_id == work.id,
                                              Score.juror_id == principal.id)
                          ).scalar_one_or_none()
    return {"work_id": work.id, "criteria": [n for n, _ in criteria(work.campaign)],
            "scores": json.loads(row.scores) if row else None,
            "weighted": round(row.weighted, 4) if row else None}


# --- results --------------------------------------------------------------------------------


def results(session: Session, campaign_id: str) -> list[ranking.Entry]:
    """Every work the jury judges, ranked within its (kind, age group) (groups in the
    campaign's order), with score, jurors, spread; too few jurors last and unranked."""
    campaign = works_service.get_campaign(session, campaign_id, public=False)
    found = list(session.execute(select(Work).where(*eligible_clause(campaign))).scalars())
    kinds = {k: i for i, k in enumerate(campaign.kinds.split(","))}
    groups = {g: i for i, g in enumerate(campaign.age_groups.split(","))}
    found.sort(key=lambda w: (kinds.get(w.kind, 99), groups.get(w.age_group, 99), w.id))
    by_work: dict[str, list[float]] = {w.id: [] for w in found}
    for work_id, value in session.execute(
            select(Score.work_id, Score.weighted).join(Work, Work.id == Score.work_id)
            .where(Work.campaign_id == campaign.id)):
        if work_id in by_work:
            by_work[work_id].append(float(value))
    entries = [ranking.Entry(w.id, w.kind, w.age_group, by_work[w.id],
                             extra={"title": w.title, "award": w.award, "status": w.status,
                                    "flagged": w.flagged,
                                    "public": works_service.is_public(w)})
               for w in found]
    return ranking.rank(entries, campaign.min_jurors)


def entry_dict(e: ranking.Entry) -> dict[str, Any]:
    return {"rank": e.rank, "work_id": e.work_id, "kind": e.kind, "age_group": e.age_group,
            "score": None if e.score is None else round(e.score, 4), "jurors": e.jurors,
            "spread": None if e.spread is None else round(e.spread, 4),
            "too_few_jurors": e.too_few, **e.extra}


def csv_text(entries: list[ranking.Entry]) -> str:
    """The results table as CSV text, starting with a byte-order mark (so that Excel reads
    the Chinese titles as UTF-8): one row per work, in rank order within each group."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        d = entry_dict(e)
        writer.writerow(["" if d[c] is None else
                         (("yes" if d[c] else "no") if isinstance(d[c], bool) else d[c])
                         for c in CSV_COLUMNS])
    return "\ufeff" + buf.getvalue()


def write_csv(entries: list[ranking.Entry], path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(csv_text(entries).encode("utf-8"))
    return path


# --- awards and publication ------------------------------------------------------------------


def _awarding(session: Session, campaign_id: str) -> Campaign:
    campaign = works_service.get_campaign(session, campaign_id, public=False)
    if campaign.status not in ("judging", "closed"):
        raise Conflict(f"awards are given once judging has begun (campaign {campaign.id!r} "
                       f"is {campaign.status})", code="not_judging")
    return campaign


def award(session: Session, campaign_id: str, work_id: str, award_name: str | None) -> Work:
    """Give a work an award (gold, silver, bronze, merit; ``none`` takes it away)."""
    campaign = _awarding(session, campaign_id)
    name = (award_name or "").strip().lower()
    if name in ("", "none"):
        name = None
    elif name not in ranking.AWARDS:
        raise BadRequest(f"award must be one of {', '.join(ranking.AWARDS)} (or none)",
                         param="award")
    work = session.get(Work, work_id)
    if work is None or work.campaign_id != campaign.id:
        raise NotFound(f"no work {work_id!r} in campaign {campaign.id!r}")
    if name and not is_eligible(campaign, work):
        raise BadRequest(f"work {work_id!r} is not one the jury judges (status {work.status}"
                         f"{', no consent to judging' if not work.consent_judging else ''})",
                         param="work")
    work.award = name
    session.commit()
    return work


def auto_award(session: Session, campaign_id: str) -> dict[str, str | None]:
    """Give every group's top places their awards by the campaign's plan, replacing the
    campaign's awards; work id -> award for every ranked work."""
    campaign = _awarding(session, campaign_id)
    entries = results(session, campaign.id)
    given = ranking.auto_awards(entries, ranking.parse_award_plan(campaign.award_plan))
    for work in session.execute(select(Work).where(Work.campaign_id == campaign.id)).scalars():
        work.award = given.get(work.id)
    session.commit()
    return given


def publish(session: Session, campaign_id: str) -> Campaign:
    """Publish the results: the campaign is ``closed`` and its awards become public."""
    campaign = _awarding(session, campaign_id)
    campaign.status = "closed"
    campaign.results_published_at = utcnow()
    session.commit()
    return campaign


def published(campaign: Campaign) -> bool:
    return campaign.status == "closed" and campaign.results_published_at is not None


def published_campaign(session: Session, campaign_id: str) -> Campaign:
    campaign = works_service.get_campaign(session, campaign_id)
    if not published(campaign):
        raise NotFound(f"the results of campaign {campaign_id!r} are not published")
    return campaign


def winners(session: Session, campaign: Campaign) -> list[Work]:
    """Every award-winning work, public or not, by kind, age group, award."""
    kinds = {k: i for i, k in enumerate(campaign.kinds.split(","))}
    groups = {g: i for i, g in enumerate(campaign.age_groups.split(","))}
    found = list(session.execute(select(Work).where(Work.campaign_id == campaign.id,
                                                    Work.award.is_not(None))).scalars())
    found.sort(key=lambda w: (kinds.get(w.kind, 99), groups.get(w.age_group, 99),
                              AWARD_ORDER.get(w.award, 99), w.id))
    return found


def public_results(session: Session, campaign_id: str, root: str = "") -> dict[str, Any]:
    """The published results: award winners per kind and age group. A winner that is not
    public is listed without title, name or id."""
    campaign = published_campaign(session, campaign_id)
    groups: list[dict[str, Any]] = []
    index: dict[tuple[str, str], dict[str, Any]] = {}
    for w in winners(session, campaign):
        key = (w.kind, w.age_group)
        if key not in index:
            index[key] = {"kind": w.kind, "age_group": w.age_group, "winners": []}
            groups.append(index[key])
        if works_service.is_public(w):
            urls = works_service.urls(w, root)
            item = {"award": w.award, "public": True, "id": w.id, "title": w.title,
                    "narrator_name": w.narrator_name, "narrator_age": w.narrator_age,
                    "synthetic": w.synthetic, **urls}
        else:
            item = {"award": w.award, "public": False, "note": HIDDEN_NOTE}
        index[key]["winners"].append(item)
    return {"campaign": works_service.campaign_to_dict(campaign),
            "published": works_service._iso(campaign.results_published_at),
            "groups": groups}


def exhibition(session: Session, campaign_id: str) -> tuple[Campaign, list[Work]]:
    """The published campaign and its public award-winning works, in exhibition order."""
    campaign = published_campaign(session, campaign_id)
    return campaign, [w for w in winners(session, campaign) if works_service.is_public(w)]


def awards_public_clause():
    """SQL: the work's award may be shown (its campaign's results are published)."""
    return or_(Work.award.is_(None), Work.campaign_id.in_(
        select(Campaign.id).where(Campaign.status == "closed",
                                  Campaign.results_published_at.is_not(None))))
