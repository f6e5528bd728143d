"""Information pages (/info) and the articles API: anyone reads what is published;
administrators write."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template, request, url_for

from .. import articles, db, policy
from ..errors import BadRequest, NotFound
from .clips import current_manager
from .pages import choose_lang

bp = Blueprint("info", __name__)


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


def _page(template: str, **context) -> Response:
    lang = choose_lang()
    from .. import maps  # the map stack loads on first use (see README: lazy imports)

    t = maps.strings(lang)
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
