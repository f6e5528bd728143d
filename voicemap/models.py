"""The tables: venues, clips, managers, activities, articles, campaigns and works (SQLAlchemy 2
typed mappings, GeoAlchemy2 geometry)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column, relationship

# Properties a venue carries, in the order exports write them: defined in ``fields`` (no ORM),
# so that import, export and the JSON built in SQL agree.
from .fields import (  # noqa: F401 (re-exported)
    VENUE_BOOL_FIELDS,
    VENUE_FIELDS,
    VENUE_INT_FIELDS,
    VENUE_TEXT_FIELDS,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass



class Venue(Base):
    __tablename__ = "venues"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32), index=True)
    district: Mapped[str | None] = mapped_column(String(32))
    address_zh: Mapped[str | None] = mapped_column(Text)
    address_en: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(Text)
    opening_hours: Mapped[str | None] = mapped_column(Text)
    opening_hours_zh: Mapped[str | None] = mapped_column(Text)
    description_zh: Mapped[str | None] = mapped_column(Text)
    description_en: Mapped[str | None] = mapped_column(Text)
    min_age: Mapped[int | None] = mapped_column(Integer)
    max_age: Mapped[int | None] = mapped_column(Integer)
    step_free: Mapped[bool | None] = mapped_column(Boolean)
    stroller_friendly: Mapped[bool | None] = mapped_column(Boolean)
    baby_care_room: Mapped[bool | None] = mapped_column(Boolean)
    # Where the coordinate came from and how good it is (``exchange.PROVENANCE`` says what
    # each may hold; data/README.md explains them).
    coord_source: Mapped[str | None] = mapped_column(Text)
    coord_datum: Mapped[str | None] = mapped_column(String(16))
    coord_precision_m: Mapped[int | None] = mapped_column(Integer)
    coord_point: Mapped[str | None] = mapped_column(String(16))
    coord_note: Mapped[str | None] = mapped_column(Text)
    # WGS-84 point. Its spatial index (GiST on PostGIS, R*Tree on SpatiaLite) is made by
    # ``backends.*.create_spatial_index``: GeoAlchemy2's automatic index is lost when one
    # process creates the tables on both backends, as the test suite does.
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    clips: Mapped[list[Clip]] = relationship(back_populates="venue")


manager_venues = Table(
    "manager_venues",
    Base.metadata,
    Column("manager_id", ForeignKey("managers.id", ondelete="CASCADE"), primary_key=True),
    Column("venue_id", ForeignKey("venues.id", ondelete="CASCADE"), primary_key=True),
)


class Manager(Base):
    __tablename__ = "managers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    # SHA-256 of the bearer token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped at sign-out: /manage sessions carry the epoch they began in.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Set by ``voicemap managers revoke``: the token stops working on every worker at once.
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the current token was issued (creation or ``voicemap managers rotate``).
    token_issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A juror (``create-manager --juror --campaign ID``): scores that campaign's works, blind.
    juror_campaign_id: Mapped[str | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)

    venues: Mapped[list[Venue]] = relationship(secondary=manager_venues)


class Clip(Base):
    __tablename__ = "clips"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    venue_id: Mapped[str] = mapped_column(ForeignKey("venues.id"), index=True)
    lang: Mapped[str] = mapped_column(String(16))
    # Only a first name and an age: never a full name, school or contact.
    narrator_name: Mapped[str] = mapped_column(String(40))
    narrator_age: Mapped[int | None] = mapped_column(Integer)  # None only when synthetic
    # A machine-made placeholder narration (the demo clips), never a child's voice.
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    title: Mapped[str | None] = mapped_column(Text)
    transcript: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
    loudness_lufs: Mapped[float] = mapped_column(Float)
    true_peak_dbtp: Mapped[float] = mapped_column(Float)
    peaks: Mapped[str] = mapped_column(Text)  # JSON array of 0..1 floats
    audio_sha256: Mapped[str] = mapped_column(String(64), index=True)  # published MP3
    original_sha256: Mapped[str] = mapped_column(String(64), index=True)  # private archive
    original_format: Mapped[str] = mapped_column(String(32))
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("managers.id",
                                                               ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    consent_by: Mapped[str] = mapped_column(Text)
    consent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("managers.id",
                                                               ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    venue: Mapped[Venue] = relationship(back_populates="clips")



class PlayCount(Base):
    """How many times a clip was played on one day (Asia/Shanghai): a number and nothing
    about who listened (no address, no cookie, no time of day).

    ``clip_id`` is not a foreign key: the counts of a deleted clip (consent withdrawn) stay,
    holding nothing of the child, so that the venue's totals over time do not shrink. The
    venue's rows go with the venue."""

    __tablename__ = "play_counts"
    __table_args__ = (Index("ix_play_counts_venue_day", "venue_id", "day"),)

    clip_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    venue_id: Mapped[str] = mapped_column(ForeignKey("venues.id", ondelete="CASCADE"))
    count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

class Activity(Base):
    """Something on at a venue: once, or weekly until a date or for a number of times.

    Times are stored in UTC; the activity's own clock is Asia/Shanghai (``activities.TZ``),
    in which a weekly rule is expanded.
    """

    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    venue_id: Mapped[str] = mapped_column(ForeignKey("venues.id", ondelete="CASCADE"),
                                          index=True)
    title_zh: Mapped[str] = mapped_column(Text)
    title_en: Mapped[str] = mapped_column(Text)
    description_zh: Mapped[str | None] = mapped_column(Text)
    description_en: Mapped[str | None] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # first occurrence
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # RFC 5545 weekly subset, UNTIL in UTC; None for a single occurrence.
    rrule: Mapped[str | None] = mapped_column(Text)
    # End of the last occurrence: lets a window query skip finished series in SQL.
    last_ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # Beijing weekdays on which occurrences start, Monday = bit 0: a window of a few days
    # skips the series that never fall on its days in SQL.
    weekdays: Mapped[int] = mapped_column(Integer)
    min_age: Mapped[int | None] = mapped_column(Integer)
    max_age: Mapped[int | None] = mapped_column(Integer)
    price: Mapped[float] = mapped_column(Float, default=0)  # yuan; 0 is free
    booking_required: Mapped[bool] = mapped_column(Boolean, default=False)
    booking_url: Mapped[str | None] = mapped_column(Text)
    accessibility: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    # Bumped on every change: the iCalendar SEQUENCE, so subscribed calendars update.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("managers.id",
                                                              ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    venue: Mapped[Venue] = relationship()
    cancelled: Mapped[list[CancelledOccurrence]] = relationship(
        cascade="all, delete-orphan", order_by="CancelledOccurrence.starts_at")


class CancelledOccurrence(Base):
    """One occurrence of a recurring activity called off (by its original start, UTC)."""

    __tablename__ = "activity_cancellations"

    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"),
                                             primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    cancelled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Article(Base):
    """An information page: Markdown in Chinese and English, and its sanitised HTML."""

    __tablename__ = "articles"
    __table_args__ = (UniqueConstraint("section", "slug", name="uq_articles_section_slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    section: Mapped[str] = mapped_column(String(16), index=True)
    slug: Mapped[str] = mapped_column(String(80))
    title_zh: Mapped[str] = mapped_column(Text)
    title_en: Mapped[str] = mapped_column(Text)
    body_zh: Mapped[str] = mapped_column(Text)
    body_en: Mapped[str] = mapped_column(Text)
    # Rendered and sanitised once, when saved (``articles.render``).
    html_zh: Mapped[str] = mapped_column(Text)
    html_en: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("managers.id",
                                                              ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ArticleImage(Base):
    """A picture for the information pages: its display rendition (``renditions`` kind in the
    store, named by its SHA-256) made by the image safety pipeline."""

    __tablename__ = "article_images"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the rendition's SHA-256
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    source_format: Mapped[str] = mapped_column(String(8))
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("managers.id",
                                                               ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- "Me and my city": campaigns and children's works -------------------------------------


class Campaign(Base):
    """A call for children's works (paintings, photos, writing, songs) with its own dates."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # a slug
    title_zh: Mapped[str] = mapped_column(Text)
    title_en: Mapped[str] = mapped_column(Text)
    description_zh: Mapped[str | None] = mapped_column(Text)
    description_en: Mapped[str | None] = mapped_column(Text)
    opens_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kinds: Mapped[str] = mapped_column(Text)  # comma-separated: painting,photo,writing,song
    age_groups: Mapped[str] = mapped_column(Text)  # comma-separated: 3-6,7-9,10-12,13-17
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft open judging closed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Judging (voicemap.judging, voicemap.ranking): criteria with weights, the award plan
    # (places per award for --auto), the fewest jurors for a work to be ranked, whether
    # jurors also see works still pending review, and when the results were published.
    criteria: Mapped[str] = mapped_column(Text, default="creativity:40,expression:30,city:30",
                                          server_default="creativity:40,expression:30,city:30")
    award_plan: Mapped[str] = mapped_column(Text, default="gold:1,silver:1,bronze:1",
                                            server_default="gold:1,silver:1,bronze:1")
    min_jurors: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    judge_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    results_published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Work(Base):
    """A child's work submitted by a guardian: private until approved, never identifying.

    Public means ``status == "approved" and consent_public and not flagged``. The guardian's
    name and contact are for administrators only. The point (WGS-84) is a venue's, or the
    point given coarsened to a ~500 m grid before it is stored (it could be a child's home).
    """

    __tablename__ = "works"
    # The public condition's columns, then the gallery's order: counting public works reads
    # only the index, and a page of them (newest first) stops after the page.
    __table_args__ = (Index("ix_works_public", "status", "consent_public", "flagged",
                            "submitted_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(Text)
    narrator_name: Mapped[str] = mapped_column(String(40))  # a first name or pen name only
    narrator_age: Mapped[int] = mapped_column(Integer)
    age_group: Mapped[str] = mapped_column(String(16), index=True)  # derived from the age
    district: Mapped[str | None] = mapped_column(String(32))
    story: Mapped[str] = mapped_column(Text)  # the writing itself, or "about my work"
    venue_id: Mapped[str | None] = mapped_column(ForeignKey("venues.id"), index=True)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)
    # A machine-made demo work (scripts/run), labelled as such, never a child's.
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    # Personal information in the work (a face, a full name, a school badge): may be
    # judged, never public.
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    flag_reason: Mapped[str | None] = mapped_column(Text)
    award: Mapped[str | None] = mapped_column(String(16), index=True)  # set by judging
    consent_judging: Mapped[bool] = mapped_column(Boolean)
    consent_public: Mapped[bool] = mapped_column(Boolean)
    consent_by: Mapped[str] = mapped_column(Text)  # private
    guardian_contact: Mapped[str] = mapped_column(Text)  # private
    consent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    withdraw_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the withdrawal code
    # Files (content-addressed in the media store): the upload as received, archived
    # privately (kind "originals"); image renditions ("renditions"); a song's MP3
    # ("published").
    original_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    original_format: Mapped[str | None] = mapped_column(String(32))
    thumb_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    thumb_type: Mapped[str | None] = mapped_column(String(32))
    thumb_width: Mapped[int | None] = mapped_column(Integer)
    thumb_height: Mapped[int | None] = mapped_column(Integer)
    display_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    display_type: Mapped[str | None] = mapped_column(String(32))
    display_width: Mapped[int | None] = mapped_column(Integer)
    display_height: Mapped[int | None] = mapped_column(Integer)
    audio_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("managers.id",
                                                               ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    campaign: Mapped[Campaign] = relationship()
    venue: Mapped[Venue | None] = relationship()


class Score(Base):
    """One juror's scores of one work (JSON ``{"criterion": 0-10, ...}``) and their weighted
    mean under the campaign's criteria when given."""

    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("work_id", "juror_id", name="uq_scores_work_juror"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    work_id: Mapped[str] = mapped_column(ForeignKey("works.id", ondelete="CASCADE"), index=True)
    juror_id: Mapped[int] = mapped_column(ForeignKey("managers.id", ondelete="CASCADE"),
                                          index=True)
    scores: Mapped[str] = mapped_column(Text)
    weighted: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# The point's coordinates, read in SQL (ST_X/ST_Y exist on both backends).
Work.lon = column_property(func.ST_X(Work.__table__.c.geom), deferred=False)
Work.lat = column_property(func.ST_Y(Work.__table__.c.geom), deferred=False)
