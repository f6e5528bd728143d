"""Attaching, reviewing and deleting clips: validation, processing, storage and rows as one.

A clip is committed only after both of its files (the published MP3 and the archived
original) are in place; any failure removes the files this attempt created, so neither a
file nor a row is ever left half-done. Withdrawing consent deletes the row first, then the
files, so a crash in between leaves only unreferenced files, which ``fsck`` finds.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audio, backup, policy
from .errors import BadRequest, Forbidden, NotFound
from .models import Clip, Manager, Venue, utcnow
from .storage import Store, file_sha256

STATUSES = ("pending", "published", "rejected")
LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
# A first name: letters (any script), optionally joined by a hyphen or an apostrophe
# (Mary-Jane, O'Neil); no spaces, dots, middle dots, digits or @, so a full name ("Lily.Smith",
# "Zhang·Wei"), an e-mail or a phone number does not fit.
FIRST_NAME = re.compile(r"^[^\W\d_]+(?:[-'’][^\W\d_]+)*$")
MIN_AGE, MAX_AGE = 3, 17
TRUTHY = {"true", "1", "yes", "on"}


@dataclass
class ClipFields:
    """What a manager says about a recording, checked."""

    lang: str
    transcript: str
    consent_by: str
    narrator_name: str
    narrator_age: int | None
    title: str | None = None
    synthetic: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Bidirectional embeddings, overrides and isolates (and the invisible marks): they reorder
# what a reader sees ("Trojan Source"), so a title could display as something else.
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _text(form: dict[str, Any], name: str) -> str:
    """A form field as stripped NFC text; control and bidirectional-override characters are
    refused."""
    value = unicodedata.normalize("NFC", str(form.get(name) or "")).strip()
    if CONTROL.search(value):
        raise BadRequest(f"{name} contains control characters", param=name)
    if BIDI.search(value):
        raise BadRequest(f"{name} contains invisible text-direction characters (U+202A-202E, "
                         "U+2066-2069 and the like), which can make text display as something "
                         "else; remove them", param=name, code="bidi_control")
    return value


text_field = _text  # shared with the other intake paths (children's works)


def check_narrator(form: dict[str, Any]) -> tuple[str, int]:
    """``narrator_name`` (a first name only) and ``narrator_age`` (3-17), checked: the one
    rule for every child's name voicemap takes (clips and works)."""
    name = _text(form, "narrator_name")
    if not name or len(name) > 40 or not FIRST_NAME.match(name):
        raise BadRequest("narrator_name must be the child's first name only: letters, joined "
                         "at most by a hyphen or an apostrophe (no spaces, dots, digits or "
                         "contact details)", param="narrator_name")
    try:
        age = int(str(form.get("narrator_age", "")).strip())
    except ValueError:
        age = -1
    if not MIN_AGE <= age <= MAX_AGE:
        raise BadRequest(f"narrator_age must be a whole number from {MIN_AGE} to {MAX_AGE}",
                         param="narrator_age")
    return name, age


def check_fields(form: dict[str, Any]) -> ClipFields:
    """Validate the fields of an upload (multipart form or CLI options); BadRequest names the
    first bad one. Guardian consent is checked first: without it nothing else matters."""
    consent = _text(form, "consent").lower()
    consent_by = _text(form, "consent_by")
    if consent not in TRUTHY or not consent_by:
        raise BadRequest("guardian consent is required: set consent=true and consent_by to "
                         "the name of the parent or guardian who gave it", code="no_consent",
                         param="consent")
    if len(consent_by) > 100:
        raise BadRequest("consent_by is longer than 100 characters", param="consent_by")
    lang = _text(form, "lang")
    if not LANG.match(lang):
        raise BadRequest("lang must be a language code such as zh, en or zh-Hant",
                         param="lang")
    name, age = check_narrator(form)
    transcript = _text(form, "transcript")
    if not transcript:
        raise BadRequest("a transcript is required: families who cannot hear the clip read it",
                         param="transcript")
    if len(transcript) > 10_000:
        raise BadRequest("transcript is longer than 10,000 characters", param="transcript")
    title = _text(form, "title") or None
    if title and len(title) > 200:
        raise BadRequest("title is longer than 200 characters", param="title")
    return ClipFields(lang=lang, transcript=transcript, consent_by=consent_by,
                      narrator_name=name, narrator_age=age, title=title)


def new_id() -> str:
    # Hex, so an id never starts with "-" (which a command line would take for an option).
    return secrets.token_hex(8)


def prepare_attach(session: Session, venue_id: str, manager: Manager | None) -> None:
    """Check that the venue exists and that ``manager`` may attach clips to it, then end the
    read: receiving the upload may take long on a slow phone, and no transaction (nor
    SQLite's write lock) may be held meanwhile.

    :raises NotFound: no such venue. :raises Unauthorized, Forbidden: see :mod:`.policy`.
    """
    if session.get(Venue, venue_id) is None:
        raise NotFound(f"no venue with id {venue_id!r}")
    policy.require_venue_manager(manager, venue_id)
    session.commit()


def attach(session: Session, store: Store, venue_id: str, upload: Path,
           fields: ClipFields, *, manager: Manager | None, limits: audio.Limits,
           status: str = "pending") -> Clip:
    """Process an upload and attach it to a venue as a new clip, committed.

    ``manager`` is the uploader (None for the command line); the caller has checked that
    they may manage this venue. :raises: NotFound, BadRequest, AudioRejected,
    PayloadTooLarge; on any of them nothing is stored.
    """
    if session.get(Venue, venue_id) is None:
        raise NotFound(f"no venue with id {venue_id!r}")
    # Processing takes seconds: hold no transaction meanwhile. An open read would pin a
    # pooled PostgreSQL connection idle in transaction, and on SQLite a stale snapshot
    # cannot be upgraded to a write once someone else has written ("database is locked").
    session.commit()
    with store.scratch("clip-") as work:
        processed = audio.process(Path(upload), work, limits)
        original, published = file_sha256(upload), file_sha256(processed.path)
        created: list[tuple[str, str]] = []
        with store.locked(original, published):
            try:
                for kind, src, sha in (("originals", upload, original),
                                       ("published", processed.path, published)):
                    if store.put(kind, src, sha)[1]:
                        created.append((kind, sha))
                now = utcnow()
                clip = Clip(
                    id=new_id(), venue_id=venue_id, lang=fields.lang,
                    narrator_name=fields.narrator_name, narrator_age=fields.narrator_age,
                    synthetic=fields.synthetic, title=fields.title,
                    transcript=fields.transcript, status=status,
                    duration_ms=processed.duration_ms,
                    loudness_lufs=round(processed.loudness_lufs, 2),
                    true_peak_dbtp=round(processed.true_peak_dbtp, 2),
                    peaks=json.dumps(processed.peaks), audio_sha256=published,
                    original_sha256=original, original_format=processed.source.format,
                    uploaded_by=manager.id if manager else None, uploaded_at=now,
                    consent_by=fields.consent_by, consent_at=now,
                    reviewed_at=now if status != "pending" else None)
                session.add(clip)
                session.commit()
            except BaseException:
                session.rollback()
                _discard_unreferenced(session, store, created)
                raise
    return clip


def _discard_unreferenced(session: Session, store: Store,
                          files: list[tuple[str, str]]) -> None:
    """Delete these files unless a committed clip refers to them; the caller holds their
    locks (``store.locked``)."""
    session.rollback()
    # Only reads here: a read transaction, which SQLite never makes wait, so that cleaning
    # up after a failed write (the database locked by a long import) cannot fail as well.
    session.connection(execution_options={"voicemap_write": False})
    for kind, sha in files:
        if not _referenced(session, kind, sha):
            store.delete(kind, sha)
    session.rollback()  # end the read: nothing here is written through the session


def _discard(session: Session, store: Store, files: list[tuple[str, str]]) -> None:
    """Delete these files unless a committed clip refers to them, under their locks."""
    if files:
        with store.locked(*(sha for _, sha in files)):
            _discard_unreferenced(session, store, files)


def _referenced(session: Session, kind: str, sha: str) -> bool:
    # Any row of any feature (a work's song may share an MP3 or original with a clip).
    return backup.is_referenced(session, kind, sha)


def get(session: Session, clip_id: str) -> Clip:
    clip = session.get(Clip, clip_id)
    if clip is None:
        raise NotFound(f"no clip with id {clip_id!r}")
    return clip


def visible(clip: Clip, manager: Manager | None) -> bool:
    """Published clips are public; pending and rejected ones only to the managers of the
    clip's venue (any of them, not only the uploader: a guardian's withdrawal must not wait
    for one person) and administrators."""
    if clip.status == "published":
        return True
    return policy.can_manage_venue(manager, clip.venue_id)


def get_published(session: Session, clip_id: str) -> Clip:
    """A published clip, or NotFound (also for one that exists but is not published)."""
    clip = session.get(Clip, clip_id)
    if clip is None or clip.status != "published":
        raise NotFound(f"no published clip with id {clip_id!r}")
    return clip


def get_visible(session: Session, clip_id: str, manager: Manager | None) -> Clip:
    """The clip if this caller may see it, else NotFound (hiding that it exists)."""
    clip = get(session, clip_id)
    if not visible(clip, manager):
        raise NotFound(f"no clip with id {clip_id!r}")
    return clip


def for_venue(session: Session, venue_id: str, manager: Manager | None = None) -> list[Clip]:
    """The venue's clips this caller may see, newest first."""
    stmt = select(Clip).where(Clip.venue_id == venue_id)
    if not policy.can_manage_venue(manager, venue_id):
        stmt = stmt.where(Clip.status == "published")
    return list(session.execute(stmt.order_by(Clip.uploaded_at.desc(), Clip.id)).scalars())


def in_page_order(clips: list[Clip], lang: str | None) -> list[Clip]:
    """The one order in which families see a venue's clips: those in the page's language
    (``lang``'s primary subtag: "zh" takes zh, zh-CN, zh-Hant) first, then the others; each
    group keeps the order it came in (newest first from ``for_venue``). The venue page, the
    clips API (hence the map's popup and its near-me play button, which plays the first)
    all order through here.
    """
    base = (lang or "").lower().split("-")[0]
    if not base:
        return list(clips)
    return sorted(clips, key=lambda c: (c.lang or "").lower().split("-")[0] != base)


def published_by_venue(session: Session, venue_ids: list[str] | None = None
                       ) -> dict[str, list[Clip]]:
    """Published clips grouped by venue (all venues, or these)."""
    stmt = select(Clip).where(Clip.status == "published")
    if venue_ids is not None:
        stmt = stmt.where(Clip.venue_id.in_(venue_ids))
    out: dict[str, list[Clip]] = {}
    for clip in session.execute(stmt.order_by(Clip.lang, Clip.uploaded_at)).scalars():
        out.setdefault(clip.venue_id, []).append(clip)
    return out


def published_versions(session: Session, clip_ids: list[str]) -> dict[str, str]:
    """Which of these clips are published now, each with its MP3's ETag (its SHA-256): what
    a phone that saved them for offline asks, to drop withdrawn or replaced recordings."""
    if not clip_ids:
        return {}
    stmt = select(Clip.id, Clip.audio_sha256).where(Clip.id.in_(clip_ids),
                                                    Clip.status == "published")
    return dict(session.execute(stmt).all())


def pending(session: Session) -> list[Clip]:
    """Clips waiting for review, oldest first."""
    return list(session.execute(select(Clip).where(Clip.status == "pending")
                                .order_by(Clip.uploaded_at)).scalars())


def every_clip(session: Session) -> list[Clip]:
    """Every clip, whatever its status, oldest first."""
    return list(session.execute(select(Clip).order_by(Clip.uploaded_at)).scalars())


def counts_by_venue(session: Session) -> dict[str, int]:
    """How many clips (of any status) each venue has; venues with none are absent."""
    return dict(session.execute(select(Clip.venue_id, func.count()).group_by(Clip.venue_id))
                .all())


def review(session: Session, clip_id: str, reviewer: Manager | None, *, publish: bool,
           reason: str | None = None) -> Clip:
    """Publish or reject a clip (administrators; None means the command line)."""
    if reviewer is not None and not policy.is_admin(reviewer):
        raise Forbidden("only administrators can review clips")
    clip = get(session, clip_id)
    if not publish and not (reason and reason.strip()):
        raise BadRequest("a rejection needs a reason", param="reason")
    clip.status = "published" if publish else "rejected"
    clip.reject_reason = None if publish else reason.strip()
    clip.reviewed_by = reviewer.id if reviewer else None
    clip.reviewed_at = utcnow()
    session.commit()
    return clip


def delete(session: Session, store: Store, clip_id: str, manager: Manager | None) -> None:
    """Remove a clip everywhere (consent withdrawn): row, published file, archived original.

    A file shared with another clip (the same bytes uploaded twice) stays for that clip.
    ``manager`` None means the command line; otherwise managers of the venue and
    administrators may delete the clips they can see (any manager of the venue, not only the
    uploader; a pending clip of another venue does not exist for them: 404, not 403).
    """
    clip = get(session, clip_id) if manager is None else get_visible(session, clip_id, manager)
    if manager is not None:
        policy.require_venue_manager(manager, clip.venue_id)
    files = [("published", clip.audio_sha256), ("originals", clip.original_sha256)]
    session.delete(clip)
    session.commit()
    _discard(session, store, files)


def check_text_edit(form: dict[str, Any]) -> dict[str, str | None]:
    """The fields an edit may change (``title``, ``transcript``; only those sent), checked
    with the rules of an upload."""
    out: dict[str, str | None] = {}
    if "title" in form:
        title = _text(form, "title") or None
        if title and len(title) > 200:
            raise BadRequest("title is longer than 200 characters", param="title")
        out["title"] = title
    if "transcript" in form:
        transcript = _text(form, "transcript")
        if not transcript:
            raise BadRequest("a transcript is required: families who cannot hear the clip "
                             "read it", param="transcript")
        if len(transcript) > 10_000:
            raise BadRequest("transcript is longer than 10,000 characters", param="transcript")
        out["transcript"] = transcript
    if not out:
        raise BadRequest("send title and/or transcript to change", param="transcript")
    return out


def _back_to_review(clip: Clip) -> None:
    clip.status = "pending"
    clip.reject_reason = None
    clip.reviewed_by = None
    clip.reviewed_at = None


def edit(session: Session, clip_id: str, manager: Manager | None,
         form: dict[str, Any]) -> Clip:
    """Change a clip's title and/or transcript (managers of its venue, administrators;
    None is the command line), committed.

    A published clip stays published (the voice, which was reviewed, is unchanged; fixing a
    typo must not take a guide off the map); a rejected clip that is edited is sent back to
    review, since editing it is how a manager answers the reviewer's reason.
    """
    clip = get(session, clip_id) if manager is None else get_visible(session, clip_id, manager)
    if manager is not None:
        policy.require_clip_manager(manager, clip)
    changes = check_text_edit(form)
    for name, value in changes.items():
        setattr(clip, name, value)
    if clip.status == "rejected":
        _back_to_review(clip)
    session.commit()
    return clip


def replace_audio(session: Session, store: Store, clip_id: str, upload: Path, *,
                  manager: Manager | None, limits: audio.Limits) -> Clip:
    """Give a clip a new recording, committed: processed like an upload, and sent back to
    review (status pending, the earlier decision cleared), so no voice reaches families
    unreviewed. The clip keeps its id, title, transcript, narrator and consent.

    The clip leaves the public map until the replacement is approved: the earlier audio is
    not kept (a clip has one recording; the old published and archived files are deleted
    once the new ones are committed, unless another row shares them), so nothing is left
    orphaned either way. On any failure nothing changes and the new files are removed.
    """
    clip = get(session, clip_id) if manager is None else get_visible(session, clip_id, manager)
    if manager is not None:
        policy.require_clip_manager(manager, clip)
    session.commit()  # no transaction held while the audio is processed
    with store.scratch("clip-") as work:
        processed = audio.process(Path(upload), work, limits)
        original, published = file_sha256(upload), file_sha256(processed.path)
        created: list[tuple[str, str]] = []
        with store.locked(original, published):
            try:
                for kind, src, sha in (("originals", upload, original),
                                       ("published", processed.path, published)):
                    if store.put(kind, src, sha)[1]:
                        created.append((kind, sha))
                clip = get(session, clip_id)  # again: it may have been deleted meanwhile
                old = [("published", clip.audio_sha256), ("originals", clip.original_sha256)]
                clip.duration_ms = processed.duration_ms
                clip.loudness_lufs = round(processed.loudness_lufs, 2)
                clip.true_peak_dbtp = round(processed.true_peak_dbtp, 2)
                clip.peaks = json.dumps(processed.peaks)
                clip.audio_sha256, clip.original_sha256 = published, original
                clip.original_format = processed.source.format
                clip.uploaded_at = utcnow()  # the uploader and the consent record stay
                _back_to_review(clip)
                session.commit()
            except BaseException:
                session.rollback()
                _discard_unreferenced(session, store, created)
                raise
    _discard(session, store, [f for f in old if f not in (("published", published),
                                                          ("originals", original))])
    return clip


def to_dict(clip: Clip, private: bool = False) -> dict[str, Any]:
    """A clip as JSON: what families see, and with ``private`` what managers also see."""
    out: dict[str, Any] = {
        "id": clip.id, "venue_id": clip.venue_id, "lang": clip.lang,
        "narrator_name": clip.narrator_name, "narrator_age": clip.narrator_age,
        "synthetic": clip.synthetic, "title": clip.title, "transcript": clip.transcript,
        "duration_ms": clip.duration_ms, "loudness_lufs": clip.loudness_lufs,
        "peaks": json.loads(clip.peaks), "status": clip.status,
        "audio_url": f"/audio/{clip.id}.mp3",
    }
    if private:
        out.update(
            true_peak_dbtp=clip.true_peak_dbtp, original_format=clip.original_format,
            reject_reason=clip.reject_reason, uploaded_by=clip.uploaded_by,
            uploaded_at=_iso(clip.uploaded_at), consent_by=clip.consent_by,
            consent_at=_iso(clip.consent_at), reviewed_at=_iso(clip.reviewed_at),
            reviewed_by=clip.reviewed_by)
    return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# --- consistency -------------------------------------------------------------------------


@dataclass
class FsckReport:
    orphan_files: list[tuple[str, str]] = field(default_factory=list)
    # (owner, kind, sha): owner is "clip <id>" or "work <id>"
    missing_files: list[tuple[str, str, str]] = field(default_factory=list)
    stale_temporaries: list[str] = field(default_factory=list)
    repaired: bool = False

    @property
    def clean(self) -> bool:
        return not (self.orphan_files or self.missing_files or self.stale_temporaries)


def fsck(session: Session, store: Store, repair: bool = False) -> FsckReport:
    """Compare stored files with the rows that name them (clips, works: every table in
    ``backup.MEDIA_REFERENCES``); with ``repair``, remove orphans either way.

    Orphan files (no row refers to them) are deleted; rows whose files are gone are
    deleted too, since such a clip or work can neither be shown nor archived.
    """
    from .models import ArticleImage, Work

    report = FsckReport()
    owners = backup.file_owners(session)
    wanted: dict[str, set[str]] = {kind: set() for kind in backup.MEDIA_REFERENCES}
    for _table, _row, kind, sha in owners:
        wanted[kind].add(sha)
    for kind in backup.MEDIA_REFERENCES:
        for sha in store.hashes(kind):
            if sha not in wanted[kind]:
                report.orphan_files.append((kind, sha))
    broken: set[tuple[str, str]] = set()
    for table, row_id, kind, sha in owners:
        if not store.exists(kind, sha):
            report.missing_files.append((f"{table[:-1]} {row_id}", kind, sha))
            broken.add((table, row_id))
    report.stale_temporaries = [str(p) for p in store.abandoned_temporaries()]
    if repair and not report.clean:
        leftovers = [(kind, sha) for table, row_id, kind, sha in owners
                     if (table, row_id) in broken]
        models = {"clips": Clip, "works": Work, "article_images": ArticleImage}
        for table, row_id in sorted(broken):
            session.delete(session.get(models[table], row_id))
        session.commit()
        # Re-checked under each file's lock: an upload committing meanwhile keeps its file.
        _discard(session, store, report.orphan_files + leftovers)
        for path in map(Path, report.stale_temporaries):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(
                missing_ok=True)
        report.repaired = True
    return report
