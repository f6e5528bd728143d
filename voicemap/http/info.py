"""Information pages (/info) and the articles API: anyone reads what is published;
administrators write."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for

from .. import articles, db, i18n, policy
from ..errors import BadRequest, NotFound
from ..models import ArticleImage, Manager
from ..storage import media_store
from .clips import current_manager, save_upload
from .media import send_media
from .pages import choose_lang

bp = Blueprint("info", __name__)
IMAGE_MAX_AGE = 365 * 24 * 3600  # a picture's address is its hash: it never changes


def _body():
    body = request.get_json(silent=True)
    if body is None:
        raise BadRequest("send the article as a JSON object (Content-Type: application/json)",
                         param="body")
    return body


@bp.get("/api/articles")
def listing():
    """Published articles (``section``, ``q``); administrators add ``status=all`` for drafts."""
    drafts = request.args.get("status") == "all"
    if drafts:
        policy.require_admin(current_manager())
    found = articles.find(db.get_session(), section=request.args.get("section") or None,
                          q=request.args.get("q"), drafts=drafts)
    return jsonify(articles=[articles.to_dict(a) for a in found])


@bp.post("/api/articles")
def create():
    article = articles.create(db.get_session(), _body(), current_manager())
    return jsonify(articles.to_dict(article)), 201


@bp.put("/api/articles/<article_id>")
def edit(article_id: str):
    article = articles.edit(db.get_session(), article_id, _body(), current_manager())
    return jsonify(articles.to_dict(article))


def add_image_from_request(manager: Manager | None, field: str = "file"
                           ) -> tuple[ArticleImage, bool]:
    """The one path from a multipart request to a stored article picture (API and /manage)."""
    session = db.get_session()
    policy.require_admin(manager)  # before the body is read
    session.commit()
    upload = request.files.get(field)
    if upload is None or not (upload.filename or upload.mimetype.startswith("image/")):
        raise BadRequest(f"send the picture as multipart/form-data in the field {field}",
                         param="file")
    store = media_store()
    with store.scratch("upload-") as work:
        path = save_upload(upload, work, current_app.config["MAX_UPLOAD_BYTES"])
        return articles.add_image(session, store, path, manager)


@bp.post("/api/articles/images")
def upload_image():
    """A picture for articles (administrators): 201 with its URL and Markdown (200 when the
    same picture was uploaded before)."""
    image, new = add_image_from_request(current_manager())
    out = articles.image_to_dict(image, request.form.get("alt", ""), request.script_root)
    return jsonify(out), 201 if new else 200


@bp.get("/media/articles/<sha256>.jpg")
def image(sha256: str):
    """An article picture: its re-encoded display rendition, cached for good (the address
    is its content hash)."""
    found = articles.get_image(db.get_session(), sha256)
    db.get_session().commit()
    resp = send_media(media_store(), articles.IMAGE_KIND, found.id, mimetype="image/jpeg",
                      missing=f"no picture {sha256!r}", max_age=IMAGE_MAX_AGE)
    resp.cache_control.public = True
    resp.cache_control.immutable = True
    resp.headers["Content-Security-Policy"] = "default-src 'none'"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _page(template: str, **context) -> Response:
    lang = choose_lang()

    t = i18n.strings(lang)
    sections = [(s, t[f"info_section_{s}"]) for s in articles.SECTIONS]
    html = render_template(template, t=t, lang=lang, other="en" if lang == "zh" else "zh",
                           sections=sections, map_url=url_for("pages.index", lang=lang),
                           **context)
    resp = Response(html, mimetype="text/html", headers={"Content-Language": lang})
    if "lang" not in request.args:
        resp.vary.add("Accept-Language")
    return resp


@bp.get("/info")
def index():
    q = (request.args.get("q") or "").strip()
    found = articles.find(db.get_session(), q=q or None)
    return _page("info.html", found=found, q=q, section=None)


@bp.get("/info/<section>")
def section(section: str):
    if section not in articles.SECTIONS:
        raise NotFound(f"no section {section!r}")
    found = articles.find(db.get_session(), section=section)
    return _page("info.html", found=found, q="", section=section)


@bp.get("/info/<section>/<slug>")
def article(section: str, slug: str):
    found = articles.published(db.get_session(), section, slug)
    return _page("info_article.html", a=found, section=section)
