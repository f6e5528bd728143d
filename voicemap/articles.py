"""Information pages: articles in sections, Markdown rendered and sanitised once, on save.

Markdown is rendered by markdown-it-py with raw HTML off, then the HTML is cleaned by nh3
(ammonia) against an allow-list: no script or style, no event handlers, no ``javascript:``
or other scheme but http, https and mailto. Links to other sites are marked:
``rel="noopener noreferrer nofollow"`` and a visible arrow. Both steps run when an article is
saved; pages serve the stored HTML.

Images: an administrator uploads a picture (:func:`add_image`); it goes through the image
safety pipeline (:func:`voicemap.images.process_image`: type from the content, bounded
decode, re-encoded as JPEG with no metadata), its display rendition is stored
content-addressed in the ``renditions`` kind (as a child's work's) and listed in
``article_images``, and it is served at ``/media/articles/<sha256>.jpg``. Markdown images
come out as ``<img>`` only when their source is such a local address of a listed picture;
any other source (another site, ``data:``, ``javascript:``) leaves only the alt text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import policy
from .clips import _discard_unreferenced, _text
from .errors import BadRequest, Conflict, NotFound
from .models import Article, ArticleImage, Manager, utcnow
from .storage import Store

if TYPE_CHECKING:
    from .images import ImageLimits

SECTIONS = ("policies", "services", "rights", "space", "environment", "about")
STATUSES = ("draft", "published")
FIELDS = ("section", "slug", "title_zh", "title_en", "body_zh", "body_en", "status")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
TITLE_MAX, BODY_MAX, SLUG_MAX = 200, 100_000, 80
EXTERNAL_REL = "noopener noreferrer nofollow"
EXTERNAL_MARK = {"zh": "（外部链接）", "en": "(external link)"}

TAGS = {"p", "br", "hr", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del", "code",
        "pre", "blockquote", "ul", "ol", "li", "a", "span", "table", "thead", "tbody", "tr",
        "th", "td", "img"}
ATTRIBUTES = {"a": {"href", "title", "rel", "class"}, "span": {"class"}, "ol": {"start"},
              "code": {"class"}, "img": {"src", "alt", "width", "height"}}
IMAGE_KIND = "renditions"  # the store's kind, shared with children's works
IMAGE_URL = "/media/articles/{sha}.jpg"
LOCAL_IMAGE = re.compile(r"^/media/articles/([0-9a-f]{64})\.jpg$")
IMAGE_REFS = re.compile(r"/media/articles/([0-9a-f]{64})\.jpg")
ALT_MAX = 200
NO_ALT_WARNING = ("no alt text: describe the picture in a few words for people who cannot "
                  "see it, between the brackets of ![...]")


def _is_external(href: str) -> bool:
    parts = urlsplit(href)
    return parts.scheme.lower() in ("http", "https") or href.startswith("//")


def _link_open(self, tokens, idx, options, env):
    token = tokens[idx]
    external = _is_external(token.attrGet("href") or "")
    env.setdefault("links", []).append(external)
    if external:
        token.attrSet("rel", EXTERNAL_REL)
        token.attrSet("class", "vm-ext")
    return self.renderToken(tokens, idx, options, env)


def _link_close(self, tokens, idx, options, env):
    close = self.renderToken(tokens, idx, options, env)
    if env.get("links") and env["links"].pop():
        mark = EXTERNAL_MARK[env.get("lang", "en")]
        return (f'<span class="vm-ext-mark"> ↗<span class="vm-sr">{mark}</span></span>'
                + close)
    return close


def _image(self, tokens, idx, options, env):
    # Only pictures that went through the image safety pipeline: a local address of a listed
    # upload. Anything else (another site, data:, javascript:) leaves its alt text only.
    from markdown_it.common.utils import escapeHtml

    token = tokens[idx]
    alt = escapeHtml(self.renderInlineAsText(token.children or [], options, env))
    found = LOCAL_IMAGE.match(token.attrGet("src") or "")
    known = env.get("images")
    if found is None or (known is not None and found[1] not in known):
        return alt
    size = ""
    if known:
        width, height = known[found[1]]
        size = f' width="{int(width)}" height="{int(height)}"'
    return f'<img src="{IMAGE_URL.format(sha=found[1])}" alt="{alt}"{size}>'


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    # A second guard after the renderer: an <img> keeps only a local picture's address.
    if tag == "img" and attribute == "src" and not LOCAL_IMAGE.match(value):
        return None
    return value


def _markdown() -> MarkdownIt:
    # "js-default": raw HTML off, tables and strikethrough on, no typographer.
    md = MarkdownIt("js-default")
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    md.add_render_rule("image", _image)
    return md


_MD = _markdown()


def render(markdown: str, lang: str = "en",
           images: dict[str, tuple[int, int]] | None = None) -> str:
    """Safe HTML from Markdown: rendered without raw HTML, then cleaned by an allow-list.

    ``images`` maps the uploaded pictures' hashes to their sizes (:func:`known_images`): a
    picture not in it is dropped; without it any local picture address is kept, unsized.
    """
    # Headings start at h2: the page's own title is the h1.
    html = _MD.render(markdown, {"lang": lang, "images": images})
    html = re.sub(r"<(/?)h1>", r"<\1h2>", html)
    return clean(html)


def clean(html: str) -> str:
    """HTML cut down to the allow-list: its tags and attributes, links to http, https and
    mailto, and images only from a local picture address."""
    html = nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, link_rel=None,
                     attribute_filter=_attribute_filter,
                     url_schemes={"http", "https", "mailto"}, strip_comments=True)
    return re.sub(r"<img(?![^>]*\ssrc=)[^>]*>", "", html)  # an img whose src was dropped


def images_without_alt(*bodies: str) -> int:
    """How many Markdown images in these bodies have no alt text (the editor warns)."""
    return sum(len(re.findall(r"!\[\s*\]\(", body or "")) for body in bodies)


def known_images(session: Session, *bodies: str) -> dict[str, tuple[int, int]]:
    """The uploaded pictures these Markdown bodies name, with their sizes."""
    wanted = {sha for body in bodies for sha in IMAGE_REFS.findall(body or "")}
    if not wanted:
        return {}
    rows = session.execute(select(ArticleImage.id, ArticleImage.width, ArticleImage.height)
                           .where(ArticleImage.id.in_(sorted(wanted))))
    return {sha: (width, height) for sha, width, height in rows}


def check(data: Any, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The article's checked fields (``data`` over ``current``); BadRequest names the field."""
    if not isinstance(data, dict):
        raise BadRequest("send a JSON object with section, slug, title_zh, title_en, "
                         "body_zh, body_en and status", param="body")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; the fields are {', '.join(FIELDS)}",
                         param=unknown[0])
    merged = {**(current or {}), **data}
    for name in FIELDS:
        if merged.get(name) is not None and not isinstance(merged[name], str):
            raise BadRequest(f"{name} must be text", param=name)
    out = {name: _text(merged, name) for name in ("section", "slug", "title_zh", "title_en")}
    # Bodies keep their line structure: Markdown needs it.
    for name in ("body_zh", "body_en"):
        body = str(merged.get(name) or "").replace("\r\n", "\n").replace("\x00", "")
        if len(body) > BODY_MAX:
            raise BadRequest(f"{name} is longer than {BODY_MAX} characters", param=name)
        out[name] = body
    if out["section"] not in SECTIONS:
        raise BadRequest(f"section must be one of {', '.join(SECTIONS)}", param="section")
    if not SLUG.match(out["slug"]) or len(out["slug"]) > SLUG_MAX:
        raise BadRequest("slug must be lower-case letters, digits and single hyphens, such "
                         f"as 'family-services' (at most {SLUG_MAX})", param="slug")
    for name in ("title_zh", "title_en"):
        if not out[name] or len(out[name]) > TITLE_MAX:
            raise BadRequest(f"{name} is required, at most {TITLE_MAX} characters",
                             param=name)
    if not out["body_zh"].strip() and not out["body_en"].strip():
        raise BadRequest("write the body in at least one language", param="body_zh")
    status = merged.get("status") or "draft"
    if status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}", param="status")
    out["status"] = status
    return out


def _save(session: Session, article: Article, fields: dict[str, Any],
          manager: Manager | None) -> Article:
    for name, value in fields.items():
        setattr(article, name, value)
    known = known_images(session, fields["body_zh"], fields["body_en"])
    article.html_zh = render(fields["body_zh"], "zh", known)
    article.html_en = render(fields["body_en"], "en", known)
    article.updated_by = manager.id if manager is not None else None
    article.updated_at = utcnow()
    session.add(article)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"an article {fields['section']}/{fields['slug']} exists already",
                       param="slug") from None
    return article


def create(session: Session, data: Any, manager: Manager | None) -> Article:
    """A new article (administrators only)."""
    return add(session, data, policy.require_admin(manager))


def add(session: Session, data: Any, manager: Manager | None = None) -> Article:
    """Check and save a new article; callers have authorised it (demo data: nobody)."""
    return _save(session, Article(), check(data), manager)


def edit(session: Session, article_id: Any, data: Any, manager: Manager | None) -> Article:
    """Change an article (administrators only); fields not given stay."""
    admin = policy.require_admin(manager)
    article = get(session, article_id)
    current = {name: getattr(article, name) for name in FIELDS}
    return _save(session, article, check(data, current), admin)


def get(session: Session, article_id: Any) -> Article:
    found = session.get(Article, int(article_id)) if str(article_id).isdigit() else None
    if found is None:
        raise NotFound(f"no article with id {article_id!r}")
    return found


def published(session: Session, section: str, slug: str) -> Article:
    """A published article, or NotFound (drafts are not public)."""
    found = session.execute(select(Article).where(
        Article.section == section, Article.slug == slug,
        Article.status == "published")).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no article {section}/{slug}")
    return found


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def find(session: Session, *, section: str | None = None, q: str | None = None,
         drafts: bool = False) -> list[Article]:
    """Articles by section and title, optionally only those whose titles or bodies (either
    language) contain ``q``. A plain substring match, since Chinese has no word breaks."""
    query = select(Article).order_by(Article.section, Article.title_en, Article.id)
    if not drafts:
        query = query.where(Article.status == "published")
    if section is not None:
        if section not in SECTIONS:
            raise BadRequest(f"section must be one of {', '.join(SECTIONS)}", param="section")
        query = query.where(Article.section == section)
    if q:
        q = q.strip()[:100]
        pattern = _like(q.lower())
        query = query.where(or_(*(func.lower(col).like(pattern, escape="\\") for col in (
            Article.title_zh, Article.title_en, Article.body_zh, Article.body_en))))
    return list(session.execute(query).scalars())


def to_dict(article: Article, *, full: bool = True) -> dict[str, Any]:
    """The article for the API: Markdown and the sanitised HTML in both languages."""
    out = {"id": article.id, "section": article.section, "slug": article.slug,
           "title_zh": article.title_zh, "title_en": article.title_en,
           "status": article.status, "updated_at": article.updated_at.isoformat()}
    if full:
        out.update(body_zh=article.body_zh, body_en=article.body_en, html_zh=article.html_zh,
                   html_en=article.html_en)
    return out


IMAGE_MEDIA_TYPE = "image/jpeg"  # images.MEDIA_TYPE: every rendition is a JPEG


# --- pictures --------------------------------------------------------------------------------


def add_image(session: Session, store: Store, upload: Path, manager: Manager | None,
              limits: ImageLimits | None = None) -> tuple[ArticleImage, bool]:
    """Put an uploaded picture through the image safety pipeline and keep its display
    rendition (administrators only); the row and whether it is new (the same picture again
    gives the same row).

    :raises: Unauthorized / Forbidden, and the pipeline's PayloadTooLarge (413) or
        ImageRejected (422) naming ``file``; on any of them nothing is stored.
    """
    from . import images  # Pillow loads on first use

    admin = policy.require_admin(manager)
    session.commit()  # processing takes a while: hold no transaction meanwhile
    with store.scratch("article-image-") as scratch:
        done = images.process_image(Path(upload), scratch, limits or images.ImageLimits())
        shown = done.display
        created = False
        with store.locked(shown.sha256):
            try:
                created = store.put(IMAGE_KIND, shown.path, shown.sha256)[1]
                row = session.get(ArticleImage, shown.sha256)
                new = row is None
                if row is None:
                    row = ArticleImage(id=shown.sha256, width=shown.width,
                                       height=shown.height, source_format=done.source_format,
                                       uploaded_by=admin.id, uploaded_at=utcnow())
                    session.add(row)
                session.commit()
            except BaseException:
                session.rollback()
                if created:
                    _discard_unreferenced(session, store, [(IMAGE_KIND, shown.sha256)])
                raise
    return row, new


def get_image(session: Session, sha256: str) -> ArticleImage:
    """An uploaded picture by its hash, or NotFound (only listed pictures are served)."""
    found = session.get(ArticleImage, sha256) if re.fullmatch(r"[0-9a-f]{64}", sha256) else None
    if found is None:
        raise NotFound(f"no picture {sha256!r}")
    return found


def image_to_dict(image: ArticleImage, alt: str = "", root: str = "") -> dict[str, Any]:
    """The picture for the API: where it is served and the Markdown to paste into a body;
    a warning when no alt text was given."""
    # The alt text must not end the Markdown's brackets or span lines.
    alt = re.sub(r"[\[\]\\\s]+", " ", alt or "").strip()[:ALT_MAX]
    url = IMAGE_URL.format(sha=image.id)
    out: dict[str, Any] = {"id": image.id, "url": root + url, "markdown": f"![{alt}]({url})",
                           "alt": alt, "width": image.width, "height": image.height,
                           "media_type": IMAGE_MEDIA_TYPE}
    if not alt:
        out["warning"] = NO_ALT_WARNING
    return out
