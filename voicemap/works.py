"""Campaigns and children's works ("Me and my city"): submission, withdrawal, review and
the public gallery, each as one unit.

A guardian submits a work with consent; it is ``pending`` and private until an
administrator approves it. Public means approved, ``consent_public`` and not flagged:
everything else does not exist for the public (NotFound), on every path. The guardian's name
and contact are stored for administrators only. A point given by latitude and longitude
(WGS-84, or GCJ-02 converted) is coarsened to a ~500 m grid before it is stored, since it
could be a child's home; a work about a venue takes the venue's point.

Files follow the clips' rules (content-addressed, stored under hash locks, the row committed
only after its files are in place; a failure leaves neither file nor row). Erasing a work
deletes the row first, then the files no other row names.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from geoalchemy2 import WKTElement
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from . import audio, clips, geo
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .models import Campaign, Manager, Venue, Work, utcnow
from .storage import Store, file_sha256

TZ = ZoneInfo("Asia/Shanghai")
KINDS = ("painting", "photo", "writing", "song")
IMAGE_KINDS = ("painting", "photo", "writing")  # writing: optionally a photo of the page
DEFAULT_AGE_GROUPS = ("3-6", "7-9", "10-12", "13-17")
CAMPAIGN_STATUSES = ("draft", "open", "judging", "closed")
WORK_STATUSES = ("pending", "approved", "rejected")
ACTIONS = ("approve", "reject", "flag")
DISTRICTS = ("Dongcheng", "Xicheng", "Chaoyang", "Haidian", "Fengtai", "Shijingshan",
             "Mentougou", "Fangshan", "Tongzhou", "Shunyi", "Changping", "Daxing", "Huairou",
             "Pinggu", "Miyun", "Yanqing")
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{5,22}[0-9]$")
MAX_STORY = 5000
MAX_TITLE = 200
PER_PAGE = 24
# The location grid (WGS-84 degrees): 0.0045 deg of latitude is ~500 m, 0.006 deg of
# longitude ~510 m at Beijing's latitude (40 N). A point is stored as its cell's centre.
GRID_LAT, GRID_LON = 0.0045, 0.006
# Withdrawal codes: 16 characters of Crockford's base 32 (80 random bits), in groups of four;
# no I, L, O or U, so what a guardian copies by hand reads back the same.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
TRUTHY = {"true", "1", "yes", "on"}
FALSY = {"false", "0", "no", "off"}


# --- campaigns -----------------------------------------------------------------------------


def parse_time(value: str | datetime, param: str) -> datetime:
    """An ISO 8601 time; without an offset it is Beijing time (Asia/Shanghai)."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise BadRequest(f"{param} must be an ISO 8601 time such as 2027-03-01T09:00 "
                             "(Beijing time unless an offset is given)", param=param) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=TZ)


def _aware(value: datetime) -> datetime:
    # SQLite hands back what it stored without the offset: UTC (utcnow, and the times below).
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_kinds(values: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """Work kinds, checked (comma-separated or repeated); all four by default."""
    items = _split(values)
    if not items:
        return list(KINDS)
    for kind in items:
        if kind not in KINDS:
            raise BadRequest(f"unknown kind {kind!r}; use {', '.join(KINDS)}", param="kinds")
    return [k for k in KINDS if k in items]


def parse_age_groups(values: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """Age groups ``LOW-HIGH`` within 3-17 that do not overlap; the default four if none."""
    items = _split(values) or list(DEFAULT_AGE_GROUPS)
    spans = []
    for item in items:
        m = re.fullmatch(r"(\d{1,2})-(\d{1,2})", item)
        lo, hi = (int(m.group(1)), int(m.group(2))) if m else (0, -1)
        if not (clips.MIN_AGE <= lo <= hi <= clips.MAX_AGE):
            raise BadRequest(f"age group {item!r} must look like 7-9, within "
                             f"{clips.MIN_AGE}-{clips.MAX_AGE}", param="age_groups")
        spans.append((lo, hi))
    spans.sort()
    for (_, hi), (lo, _) in zip(spans, spans[1:], strict=False):
        if lo <= hi:
            raise BadRequest("age groups must not overlap", param="age_groups")
    return [f"{lo}-{hi}" for lo, hi in spans]


def _split(values: Any) -> list[str]:
    if not values:
        return []
    if isinstance(values, str):
        values = [values]
    return [p.strip() for v in values for p in str(v).split(",") if p.strip()]


def age_group_of(campaign: Campaign, age: int) -> str | None:
    """The campaign's age group holding ``age``, or None."""
    for group in campaign.age_groups.split(","):
        lo, hi = (int(x) for x in group.split("-"))
        if lo <= age <= hi:
            return group
    return None


def create_campaign(session: Session, campaign_id: str, *, title_zh: str, title_en: str,
                    opens: str | datetime, closes: str | datetime,
                    kinds: Any = None, age_groups: Any = None,
                    description_zh: str | None = None, description_en: str | None = None,
                    status: str = "draft", criteria: str | None = None) -> Campaign:
    """A new campaign, committed. :raises: BadRequest naming the field, Conflict if the id
    is taken."""
    campaign_id = (campaign_id or "").strip()
    if not SLUG.match(campaign_id):
        raise BadRequest("a campaign id is a slug: lowercase letters, digits and hyphens, "
                         "at most 64 characters", param="id")
    fields = {"title_zh": title_zh, "title_en": title_en, "description_zh": description_zh,
              "description_en": description_en}
    for name in list(fields):
        fields[name] = clips.text_field(fields, name) or None
        if name.startswith("title") and not fields[name]:
            raise BadRequest(f"{name} is required", param=name)
        if fields[name] and len(fields[name]) > (MAX_TITLE if name.startswith("title")
                                                 else MAX_STORY):
            raise BadRequest(f"{name} is too long", param=name)
    opens_at, closes_at = parse_time(opens, "opens"), parse_time(closes, "closes")
    if closes_at <= opens_at:
        raise BadRequest("closes must be after opens", param="closes")
    _check_status(status)
    if session.get(Campaign, campaign_id) is not None:
        raise Conflict(f"a campaign with id {campaign_id!r} exists already", param="id")
    from . import ranking

    fields["criteria"] = ranking.format_criteria(ranking.parse_criteria(criteria))
    campaign = Campaign(id=campaign_id, opens_at=opens_at.astimezone(UTC),
                        closes_at=closes_at.astimezone(UTC), kinds=",".join(parse_kinds(kinds)),
                        age_groups=",".join(parse_age_groups(age_groups)), status=status,
                        **fields)
    session.add(campaign)
    session.commit()
    return campaign


def _check_status(status: str) -> None:
    if status not in CAMPAIGN_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(CAMPAIGN_STATUSES)}",
                         param="status")


def set_status(session: Session, campaign_id: str, status: str) -> Campaign:
    """Move a campaign to ``status`` (draft, open, judging, closed), committed.

    Leaving ``closed`` withdraws published results: closing again does not bring them back
    (awards may have changed meanwhile); only publishing does (``judging.publish``).
    """
    _check_status(status)
    campaign = get_campaign(session, campaign_id, public=False)
    campaign.status = status
    if status != "closed":
        campaign.results_published_at = None
    session.commit()
    return campaign


def list_campaigns(session: Session, public: bool = True) -> list[Campaign]:
    """Campaigns, newest opening first; drafts only for administrators."""
    stmt = select(Campaign).order_by(Campaign.opens_at.desc(), Campaign.id)
    if public:
        stmt = stmt.where(Campaign.status != "draft")
    return list(session.execute(stmt).scalars())


def find_campaign(session: Session, campaign_id: str) -> Campaign | None:
    """The campaign, drafts included, or None (for pages that explain a refusal)."""
    return session.get(Campaign, campaign_id)


def get_campaign(session: Session, campaign_id: str, public: bool = True) -> Campaign:
    """The campaign (a draft is not public), or NotFound."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or (public and campaign.status == "draft"):
        raise NotFound(f"no campaign with id {campaign_id!r}")
    return campaign


def accepting(campaign: Campaign, now: datetime | None = None) -> bool:
    """Whether the campaign takes submissions now: open, and between its times."""
    now = now or utcnow()
    return (campaign.status == "open" and _aware(campaign.opens_at) <= now
            <= _aware(campaign.closes_at))


def campaign_to_dict(campaign: Campaign) -> dict[str, Any]:
    """A campaign as JSON (times in Beijing time, with their offset)."""
    return {
        "id": campaign.id, "title_zh": campaign.title_zh, "title_en": campaign.title_en,
        "description_zh": campaign.description_zh, "description_en": campaign.description_en,
        "opens": _aware(campaign.opens_at).astimezone(TZ).isoformat(),
        "closes": _aware(campaign.closes_at).astimezone(TZ).isoformat(),
        "kinds": campaign.kinds.split(","), "age_groups": campaign.age_groups.split(","),
        "status": campaign.status, "accepting": accepting(campaign),
        "criteria": [{"name": n, "weight": w} for n, w in _criteria(campaign)],
        "results_published": bool(campaign.status == "closed"
                                  and campaign.results_published_at is not None),
    }


def _criteria(campaign: Campaign) -> list[tuple[str, float]]:
    from .ranking import parse_criteria

    return parse_criteria(campaign.criteria)


# --- submission ----------------------------------------------------------------------------


@dataclass
class Submission:
    """What a guardian says about a work, checked."""

    kind: str
    title: str
    narrator_name: str
    narrator_age: int
    age_group: str
    story: str
    consent_by: str
    guardian_contact: str
    consent_public: bool
    district: str | None = None
    venue_id: str | None = None
    point: tuple[float, float] | None = None  # WGS-84, coarsened


def _flag(form: dict[str, Any], name: str) -> bool | None:
    value = str(form.get(name) or "").strip().lower()
    if value in TRUTHY:
        return True
    if value in FALSY:
        return False
    return None


def coarsen(lon: float, lat: float) -> tuple[float, float]:
    """The centre of the ~500 m grid cell (``GRID_LON`` x ``GRID_LAT`` degrees) holding the
    point: what is stored and shown in place of a point that could be a home."""
    cx = (math.floor(lon / GRID_LON) + 0.5) * GRID_LON
    cy = (math.floor(lat / GRID_LAT) + 0.5) * GRID_LAT
    return round(cx, 6), round(cy, 6)


def check_submission(session: Session, campaign: Campaign, form: dict[str, Any], *,
                     has_file: bool,
                     service_area: tuple[float, float, float, float] | None = None
                     ) -> Submission:
    """Validate every field of a submission; BadRequest names the first bad one. Consent
    comes first: without it nothing else matters."""
    text = clips.text_field
    kind = text(form, "kind")
    if kind not in campaign.kinds.split(","):
        raise BadRequest(f"kind must be one of {campaign.kinds.replace(',', ', ')} for this "
                         "campaign", param="kind")
    if _flag(form, "consent_judging") is not True:
        raise BadRequest("a guardian's consent to judging is required: consent_judging=true",
                         param="consent_judging", code="no_consent")
    consent_by = text(form, "consent_by")
    if not consent_by or len(consent_by) > 100:
        raise BadRequest("consent_by must name the parent or guardian giving consent "
                         "(1-100 characters)", param="consent_by", code="no_consent")
    contact = text(form, "guardian_contact")
    if not (EMAIL.match(contact) or PHONE.match(contact)) or len(contact) > 120:
        raise BadRequest("guardian_contact must be the guardian's phone number or e-mail "
                         "address (kept private)", param="guardian_contact")
    public = _flag(form, "consent_public")
    if public is None:
        raise BadRequest("consent_public must be true or false", param="consent_public")
    title = text(form, "title")
    if not title or len(title) > MAX_TITLE:
        raise BadRequest(f"title is required, at most {MAX_TITLE} characters", param="title")
    name, age = clips.check_narrator(form)
    group = age_group_of(campaign, age)
    if group is None:
        raise BadRequest(f"narrator_age {age} is in none of this campaign's age groups "
                         f"({campaign.age_groups.replace(',', ', ')})", param="narrator_age")
    district = text(form, "district") or None
    if district is not None:
        match = [d for d in DISTRICTS if d.lower() == district.lower()]
        if not match:
            raise BadRequest(f"district must be one of Beijing's 16: {', '.join(DISTRICTS)}",
                             param="district")
        district = match[0]
    story = _story(form)
    if not story:
        raise BadRequest("story is required: the writing itself, or a few words about the "
                         "work for people who cannot see or hear it", param="story")
    if len(story) > MAX_STORY:
        raise BadRequest(f"story is longer than {MAX_STORY:,} characters", param="story")
    venue_id, point = _location(session, form, service_area)
    if kind != "writing" and not has_file:
        raise BadRequest(f"a {kind} needs its file: send it as the multipart field 'file'",
                         param="file")
    return Submission(kind=kind, title=title, narrator_name=name, narrator_age=age,
                      age_group=group, story=story, consent_by=consent_by,
                      guardian_contact=contact, consent_public=public, district=district,
                      venue_id=venue_id, point=point)


def _story(form: dict[str, Any]) -> str:
    """The story as sent (line breaks kept; CRLF made LF), control characters refused."""
    raw = str(form.get("story") or "").replace("\r\n", "\n").replace("\r", "\n")
    kept = clips.text_field({"story": raw.replace("\n", " ")}, "story")  # the checks
    return raw.strip() if kept else ""


def _location(session: Session, form: dict[str, Any],
              service_area: tuple[float, float, float, float] | None
              ) -> tuple[str | None, tuple[float, float] | None]:
    venue_id = clips.text_field(form, "venue_id") or None
    lat_s, lon_s = (clips.text_field(form, n) for n in ("lat", "lon"))
    if venue_id is not None:
        if lat_s or lon_s:
            raise BadRequest("give venue_id or lat/lon, not both", param="venue_id")
        if session.get(Venue, venue_id) is None:
            raise BadRequest(f"no venue with id {venue_id!r}", param="venue_id")
        return venue_id, None
    if not lat_s and not lon_s:
        return None, None
    try:
        lat = float(lat_s)
    except ValueError:
        raise BadRequest("lat must be a number (degrees)", param="lat") from None
    try:
        lon = float(lon_s)
    except ValueError:
        raise BadRequest("lon must be a number (degrees)", param="lon") from None
    geo.check_lon_lat(lon, lat)
    lon, lat = geo.to_wgs84(lon, lat, (clips.text_field(form, "crs") or "wgs84").lower())
    if service_area is not None:
        minlon, minlat, maxlon, maxlat = service_area
        if not (minlon <= lon <= maxlon and minlat <= lat <= maxlat):
            raise BadRequest("the point is outside the service area (Beijing)", param="lat")
    return None, coarsen(lon, lat)


def new_code() -> str:
    """A withdrawal code: 16 characters in groups of four (80 random bits)."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def hash_code(code: str) -> str:
    """SHA-256 of the code as typed back (case, spaces and hyphens ignored; O read as 0,
    I and L as 1). A long random code needs no slow hash, as with manager tokens."""
    norm = re.sub(r"[\s-]", "", code or "").upper().translate(str.maketrans("OIL", "011"))
    return hashlib.sha256(norm.encode()).hexdigest()


def submit(session: Session, store: Store, campaign_id: str, form: dict[str, Any],
           upload: Path | None, *, audio_limits: audio.Limits, image_limits: Any = None,
           service_area: tuple[float, float, float, float] | None = None,
           status: str = "pending", synthetic: bool = False,
           now: datetime | None = None) -> tuple[Work, str]:
    """Check, process and store a submission; the committed work and its withdrawal code
    (shown once, only its hash is kept).

    :raises: NotFound (campaign), Conflict (not open), BadRequest (a field, named),
        PayloadTooLarge / AudioRejected / the image pipeline's 413 and 422; on any of them
        nothing is stored.
    """
    campaign = get_campaign(session, campaign_id)
    if not accepting(campaign, now):
        raise Conflict(f"campaign {campaign_id!r} is not open for submissions "
                       f"(status {campaign.status})", code="campaign_not_open")
    fields = check_submission(session, campaign, form, has_file=upload is not None,
                              service_area=service_area)
    point = fields.point
    if fields.venue_id is not None:
        place = session.execute(select(func.ST_X(Venue.geom), func.ST_Y(Venue.geom))
                                .where(Venue.id == fields.venue_id)).one()
        point = (float(place[0]), float(place[1]))
    # Processing takes seconds: hold no transaction meanwhile (see clips.attach).
    session.commit()
    code = new_code()
    with store.scratch("work-") as scratch:
        files: dict[str, Any] = {}
        if upload is not None and fields.kind in IMAGE_KINDS:
            from . import images

            done = images.process_image(Path(upload), scratch, image_limits or
                                        images.ImageLimits())
            files.update(original_format=done.source_format,
                         thumb=done.thumb, display=done.display)
        elif upload is not None:
            processed = audio.process(Path(upload), scratch, audio_limits)
            files.update(original_format=processed.source.format, song=processed)
        puts = []
        if upload is not None:
            puts.append(("originals", Path(upload), file_sha256(upload)))
        for key in ("thumb", "display"):
            if key in files:
                puts.append(("renditions", files[key].path, files[key].sha256))
        if "song" in files:
            puts.append(("published", files["song"].path, file_sha256(files["song"].path)))
        created: list[tuple[str, str]] = []
        with store.locked(*(sha for _, _, sha in puts)) if puts else nullcontext():
            try:
                for kind, src, sha in puts:
                    if store.put(kind, src, sha)[1]:
                        created.append((kind, sha))
                current = utcnow()
                work = Work(
                    id=clips.new_id(), campaign_id=campaign.id, kind=fields.kind,
                    title=fields.title, narrator_name=fields.narrator_name,
                    narrator_age=fields.narrator_age, age_group=fields.age_group,
                    district=fields.district, story=fields.story, venue_id=fields.venue_id,
                    geom=(WKTElement(f"POINT({point[0]} {point[1]})", srid=4326)
                          if point else None),
                    synthetic=synthetic, status=status, flagged=False,
                    consent_judging=True, consent_public=fields.consent_public,
                    consent_by=fields.consent_by, guardian_contact=fields.guardian_contact,
                    consent_at=current, withdraw_hash=hash_code(code),
                    original_sha256=puts[0][2] if upload is not None else None,
                    original_format=files.get("original_format"),
                    submitted_at=current, reviewed_at=current if status != "pending" else None)
                for key in ("thumb", "display"):
                    if key in files:
                        r = files[key]
                        setattr(work, f"{key}_sha256", r.sha256)
                        setattr(work, f"{key}_type", r.media_type)
                        setattr(work, f"{key}_width", r.width)
                        setattr(work, f"{key}_height", r.height)
                if "song" in files:
                    work.audio_sha256 = puts[-1][2]
                    work.duration_ms = files["song"].duration_ms
                session.add(work)
                session.commit()
            except BaseException:
                session.rollback()
                clips._discard_unreferenced(session, store, created)
                raise
    return work, code


# --- reading -------------------------------------------------------------------------------


def public_clause():
    """The SQL condition for a public work: approved, public consent, not flagged."""
    return and_(Work.status == "approved", Work.consent_public.is_(True),
                Work.flagged.is_(False))


def is_public(work: Work) -> bool:
    return work.status == "approved" and work.consent_public and not work.flagged


def get(session: Session, work_id: str) -> Work:
    work = session.get(Work, work_id)
    if work is None:
        raise NotFound(f"no work with id {work_id!r}")
    return work


def get_public(session: Session, work_id: str) -> Work:
    """The work if it is public, else NotFound (hiding that it exists)."""
    work = session.get(Work, work_id)
    if work is None or not is_public(work):
        raise NotFound(f"no work with id {work_id!r}")
    return work


@dataclass
class Page:
    works: list[Work]
    total: int
    page: int
    pages: int


def public_works(session: Session, *, campaign: str | None = None, kind: str | None = None,
                 age_group: str | None = None, venue: str | None = None,
                 award: str | None = None, page: int = 1, per_page: int = PER_PAGE) -> Page:
    """Public works, newest first, filtered and paged."""
    if kind and kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(KINDS)}", param="kind")
    if age_group and not re.fullmatch(r"\d{1,2}-\d{1,2}", age_group):
        raise BadRequest("age_group looks like 7-9", param="age_group")
    if page < 1:
        raise BadRequest("page starts at 1", param="page")
    cond = [public_clause()]
    for column, value in ((Work.campaign_id, campaign), (Work.kind, kind),
                          (Work.age_group, age_group), (Work.venue_id, venue),
                          (Work.award, award)):
        if value:
            cond.append(column == value)
    if award:  # awards are public once the campaign's results are published
        from .judging import awards_public_clause

        cond.append(awards_public_clause())
    total = session.execute(select(func.count()).select_from(Work).where(*cond)).scalar_one()
    found = session.execute(select(Work).where(*cond)
                            .order_by(Work.submitted_at.desc(), Work.id.desc())
                            .limit(per_page).offset((page - 1) * per_page)).scalars()
    return Page(list(found), total, page, max(1, math.ceil(total / per_page)))


def for_venue(session: Session, venue_id: str, limit: int = 12) -> list[Work]:
    """Public works pinned to this venue, newest first."""
    return list(session.execute(select(Work).where(public_clause(), Work.venue_id == venue_id)
                                .order_by(Work.submitted_at.desc(), Work.id)
                                .limit(limit)).scalars())


def map_rows(session: Session) -> list[list[Any]]:
    """Public works with a point, compact for the map: ``[id, lon, lat, kind, title, name,
    age, thumb?, award]`` (WGS-84; the award only once its results are published, else
    None)."""
    from .judging import awards_public_clause

    rows = session.execute(select(Work.id, Work.lon, Work.lat, Work.kind, Work.title,
                                  Work.narrator_name, Work.narrator_age, Work.thumb_sha256,
                                  Work.award, awards_public_clause())
                           .where(public_clause(), Work.geom.is_not(None))
                           .order_by(Work.id)).all()
    return [[r[0], round(r[1], 6), round(r[2], 6), r[3], r[4], r[5], r[6], r[7] is not None,
             r[8] if r[9] else None] for r in rows]


def review_queue(session: Session, status: str | None = "pending") -> list[Work]:
    """Works to review (``status`` None: all), oldest first."""
    stmt = select(Work).order_by(Work.submitted_at, Work.id)
    if status:
        stmt = stmt.where(Work.status == status)
    return list(session.execute(stmt).scalars())


# --- review and erasure ---------------------------------------------------------------------


def review(session: Session, work_id: str, reviewer: Manager | None, action: str,
           reason: str | None = None) -> Work:
    """approve, reject (with a reason) or flag (personal information in the work: may be
    judged, never public). ``reviewer`` None is the command line."""
    if reviewer is not None and not reviewer.is_admin:
        raise Forbidden("only administrators can review works")
    if action not in ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(ACTIONS)}", param="action")
    reason = (reason or "").strip() or None
    if reason and len(reason) > 1000:
        raise BadRequest("reason is longer than 1000 characters", param="reason")
    work = get(session, work_id)
    if action == "reject":
        if not reason:
            raise BadRequest("a rejection needs a reason", param="reason")
        work.status, work.reject_reason = "rejected", reason
    elif action == "approve":
        work.status, work.reject_reason = "approved", None
    else:
        work.flagged, work.flag_reason = True, reason
    work.reviewed_by = reviewer.id if reviewer else None
    work.reviewed_at = utcnow()
    session.commit()
    return work


def erase(session: Session, store: Store, work_id: str) -> None:
    """Delete a work everywhere: row, renditions, song, archived original (files another
    row still names stay for it)."""
    work = get(session, work_id)
    files = [(kind, sha) for kind, sha in (
        ("originals", work.original_sha256), ("renditions", work.thumb_sha256),
        ("renditions", work.display_sha256), ("published", work.audio_sha256)) if sha]
    session.delete(work)
    session.commit()
    clips._discard(session, store, files)


def withdraw(session: Session, store: Store, work_id: str, code: str) -> None:
    """A guardian withdraws a work with its code. A wrong code and an unknown id answer the
    same NotFound, so the code cannot be used to learn which works exist."""
    work = session.get(Work, work_id)
    if work is None or not hmac.compare_digest(work.withdraw_hash, hash_code(code)):
        raise NotFound("no work matches this id and withdrawal code")
    erase(session, store, work_id)


# --- JSON ----------------------------------------------------------------------------------


def urls(work: Work, root: str = "") -> dict[str, str | None]:
    """Where a work's renditions and song are served."""
    base = f"{root}/media/works/{work.id}"
    return {"thumb_url": f"{base}/thumb" if work.thumb_sha256 else None,
            "display_url": f"{base}/display" if work.display_sha256 else None,
            "audio_url": f"{base}/song.mp3" if work.audio_sha256 else None,
            "page_url": f"{root}/works/{work.id}"}


def to_dict(work: Work, private: bool = False, root: str = "") -> dict[str, Any]:
    """A work as JSON: what the public sees (no district, no guardian data), and with
    ``private`` the review state and consent record for administrators."""
    out: dict[str, Any] = {
        "id": work.id, "campaign": work.campaign_id, "kind": work.kind, "title": work.title,
        "narrator_name": work.narrator_name, "narrator_age": work.narrator_age,
        "age_group": work.age_group, "story": work.story, "venue_id": work.venue_id,
        "geometry": ({"type": "Point", "coordinates": [round(work.lon, 6),
                                                       round(work.lat, 6)]}
                     if work.geom is not None else None),
        "award": work.award if private or _award_shown(work) else None,
        "synthetic": work.synthetic,
        "duration_ms": work.duration_ms,
        "width": work.display_width, "height": work.display_height,
        **urls(work, root),
    }
    if private:
        out.update(
            status=work.status, reject_reason=work.reject_reason, flagged=work.flagged,
            flag_reason=work.flag_reason, district=work.district,
            consent_judging=work.consent_judging, consent_public=work.consent_public,
            consent_by=work.consent_by, guardian_contact=work.guardian_contact,
            consent_at=_iso(work.consent_at), submitted_at=_iso(work.submitted_at),
            original_format=work.original_format, reviewed_at=_iso(work.reviewed_at))
    return out


def _award_shown(work: Work) -> bool:
    """An award is public once its campaign's results are published."""
    return bool(work.award) and work.campaign.status == "closed" and (
        work.campaign.results_published_at is not None)


def _iso(value: datetime | None) -> str | None:
    return _aware(value).isoformat() if value else None
