"""The clips API: attach (managers), list, review (administrators), delete, stream audio."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, g, jsonify, request

from .. import audio, auth, clips, db, plays, policy, venues
from ..errors import BadRequest, PayloadTooLarge
from ..limits import authenticate_limited, count_play, count_upload
from ..metrics import timed_upload
from ..storage import media_store
from .media import send_media

bp = Blueprint("clips", __name__)

# Browsers and CDNs may keep a copy: "private" keeps shared caches out, so withdrawing
# consent reaches everything but the listener's own browser cache.
AUDIO_MAX_AGE = 30 * 24 * 3600


def current_manager():
    """The manager named by the request's bearer token (or the /manage session), or None."""
    if "manager" not in g:
        token = auth.bearer_token(request.headers.get("Authorization"))
        g.manager = authenticate_limited(db.get_session(), token) if token else None
        if g.manager is None and token:
            policy.require_signed_in(None)  # a wrong token is an error, not anonymity
    return g.manager


def limits() -> audio.Limits:
    cfg = current_app.config
    return audio.Limits(max_bytes=cfg["MAX_UPLOAD_BYTES"], max_duration_s=cfg["MAX_DURATION_S"],
                        min_duration_s=cfg["MIN_DURATION_S"])


def save_upload(file_storage, directory: Path, max_bytes: int) -> Path:
    """Stream an uploaded file to disk, refusing it as soon as it passes ``max_bytes``."""
    path = directory / "upload"
    written = 0
    try:
        with open(path, "xb") as out:
            while block := file_storage.stream.read(256 * 1024):
                written += len(block)
                if written > max_bytes:
                    raise PayloadTooLarge(f"the file is larger than the limit of {max_bytes} "
                                          "bytes", limit_bytes=max_bytes)
                out.write(block)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def attach_from_request(venue_id: str, manager) -> clips.Clip:
    """The one path from a multipart request to a stored clip (API and /manage share it)."""
    session = db.get_session()
    # Authorised, and the read ended, before the body is parsed (which may take long).
    clips.prepare_attach(session, venue_id, manager)
    if not request.form and not request.files:
        raise BadRequest("send the recording as multipart/form-data with the fields file, "
                         "lang, narrator_name, narrator_age, transcript, consent_by and "
                         "consent (the body was empty or not readable multipart)")
    fields = clips.check_fields(request.form)
    upload = request.files.get("file")
    if upload is None:
        raise BadRequest("no file: send the recording as the multipart field 'file'",
                         param="file")
    store = media_store()
    with store.scratch("upload-") as work:
        path = save_upload(upload, work, current_app.config["MAX_UPLOAD_BYTES"])
        if path.stat().st_size == 0:
            raise BadRequest("the file is empty", param="file", code="empty")
        with timed_upload():
            return clips.attach(session, store, venue_id, path, fields, manager=manager,
                                limits=limits())


def replace_from_request(clip_id: str, manager) -> clips.Clip:
    """A new recording for a clip from the multipart field ``file`` (API and /manage)."""
    session = db.get_session()
    clip = clips.get_visible(session, clip_id, manager)
    policy.require_clip_manager(manager, clip)
    session.commit()  # the read ended before the body is received
    upload = request.files.get("file")
    if upload is None:
        raise BadRequest("no file: send the recording as the multipart field 'file'",
                         param="file")
    store = media_store()
    with store.scratch("upload-") as work:
        path = save_upload(upload, work, current_app.config["MAX_UPLOAD_BYTES"])
        if path.stat().st_size == 0:
            raise BadRequest("the file is empty", param="file", code="empty")
        with timed_upload():
            return clips.replace_audio(session, store, clip_id, path, manager=manager,
                                       limits=limits())


@bp.post("/api/venues/<venue_id>/clips")
def create(venue_id: str):
    manager = policy.require_signed_in(current_manager())
    count_upload(manager)
    clip = attach_from_request(venue_id, manager)
    return jsonify(clips.to_dict(clip, private=True)), 201


@bp.get("/api/venues/<venue_id>/clips")
def venue_clips(venue_id: str):
    session = db.get_session()
    venues.get(session, venue_id)  # 404 before any question about the caller
    manager = current_manager()
    lang = order_lang()
    found = clips.in_page_order(clips.for_venue(session, venue_id, manager), lang)
    resp = jsonify(lang=lang, clips=[clips.to_dict(c, private=policy.can_see_private(manager, c))
                                     for c in found])
    if not request.args.get("lang"):
        resp.vary.add("Accept-Language")
    return resp


def order_lang() -> str:
    """The language the clips are ordered by: ``?lang=`` (a code such as zh, en, zh-Hant),
    else the best of zh and en for the request's Accept-Language, else zh (the pages'
    rule, ``pages.choose_lang``)."""
    asked = (request.args.get("lang") or "").strip()
    if asked:
        if not clips.LANG.match(asked):
            raise BadRequest(f"lang must be a language code such as zh or en, got {asked!r}",
                             param="lang")
        return asked
    return request.accept_languages.best_match(("zh", "en")) or "zh"


@bp.get("/api/clips/<clip_id>")
def clip_detail(clip_id: str):
    manager = current_manager()
    clip = clips.get_visible(db.get_session(), clip_id, manager)
    return jsonify(clips.to_dict(clip, private=policy.can_see_private(manager, clip)))


@bp.patch("/api/clips/<clip_id>")
def update(clip_id: str):
    """Change a clip's ``title`` and/or ``transcript`` (JSON object or form fields)."""
    manager = policy.require_signed_in(current_manager())
    body = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    if not isinstance(body, dict):
        raise BadRequest('send a JSON object such as {"title": "...", "transcript": "..."}')
    unknown = sorted(set(body) - {"title", "transcript"})
    if unknown:
        raise BadRequest(f"only title and transcript can be changed, not {', '.join(unknown)}",
                         param=unknown[0])
    if any(v is not None and not isinstance(v, str) for v in body.values()):
        raise BadRequest("title and transcript must be text")
    clip = clips.edit(db.get_session(), clip_id, manager, body)
    return jsonify(clips.to_dict(clip, private=policy.can_see_private(manager, clip)))


@bp.put("/api/clips/<clip_id>/audio")
def replace(clip_id: str):
    """Replace a clip's recording (multipart field ``file``); the clip goes back to review."""
    manager = policy.require_signed_in(current_manager())
    count_upload(manager)
    clip = replace_from_request(clip_id, manager)
    return jsonify(clips.to_dict(clip, private=policy.can_see_private(manager, clip)))


@bp.delete("/api/clips/<clip_id>")
def remove(clip_id: str):
    manager = policy.require_signed_in(current_manager())
    clips.delete(db.get_session(), media_store(), clip_id, manager)
    return "", 204


# How many clip ids one status question may name (a venue has a few dozen at most).
STATUS_MAX_IDS = 200


@bp.get("/api/clips/status")
def clip_status():
    """``?ids=a,b,c``: which of these clips are published, with their audio's ETag, and which
    are not (withdrawn, rejected, replaced or never existed). The offline service worker asks
    this on every online load of a saved venue and deletes what is no longer published."""
    ids = [i for i in (request.args.get("ids") or "").split(",") if i]
    if len(ids) > STATUS_MAX_IDS:
        raise BadRequest(f"ask about at most {STATUS_MAX_IDS} clips at once", param="ids")
    if any(len(i) > 32 for i in ids):
        raise BadRequest("a clip id is at most 32 characters", param="ids")
    found = clips.published_versions(db.get_session(), ids)
    response = jsonify(published={i: found[i] for i in ids if i in found},
                       withdrawn=[i for i in dict.fromkeys(ids) if i not in found])
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/api/clips/<clip_id>/played")
def played(clip_id: str):
    """The player's beacon on a clip's first play: one more play today (Asia/Shanghai).
    Nothing about the caller is stored with the count; an unpublished clip is 404. The
    address is a rate-limit key for the window only (``RATELIMIT_PLAY`` per address and
    clip: 429 over it), so one client cannot inflate a count."""
    session = db.get_session()
    clip = clips.get_published(session, clip_id)
    count_play(clip.id)
    plays.count_play(session, clip)
    response = current_app.response_class(status=204)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/api/review")
def review_queue():
    policy.require_admin(current_manager())
    return jsonify(clips=[clips.to_dict(c, private=True) for c in clips.pending(db.get_session())])


@bp.post("/api/clips/<clip_id>/publish")
def publish(clip_id: str):
    admin = policy.require_admin(current_manager())
    clip = clips.review(db.get_session(), clip_id, admin, publish=True)
    return jsonify(clips.to_dict(clip, private=True))


@bp.post("/api/clips/<clip_id>/reject")
def reject(clip_id: str):
    admin = policy.require_admin(current_manager())
    body = request.get_json(silent=True)
    if body is None:
        reason = request.form.get("reason")
    elif isinstance(body, dict):
        reason = body.get("reason")
    else:
        raise BadRequest('send a JSON object such as {"reason": "..."}', param="reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 1000):
        raise BadRequest("reason must be text of at most 1000 characters", param="reason")
    clip = clips.review(db.get_session(), clip_id, admin, publish=False, reason=reason)
    return jsonify(clips.to_dict(clip, private=True))


@bp.get("/audio/<clip_id>.mp3")
def stream(clip_id: str):
    """A published clip's MP3, with Range (206) for seeking on iOS, ETag and caching."""
    clip = clips.get_published(db.get_session(), clip_id)
    response = send_media(media_store(), "published", clip.audio_sha256, mimetype="audio/mpeg",
                          missing=f"no published clip with id {clip_id!r}",
                          max_age=AUDIO_MAX_AGE)
    response.cache_control.public = False
    response.cache_control.private = True
    return response
