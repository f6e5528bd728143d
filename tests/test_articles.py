"""Information pages on both backends: administrators write, Markdown comes out inert,
drafts stay private, search finds both languages, pages keep their CSP."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers import feature, load
from sqlalchemy import func, select

from voicemap import articles, auth, db
from voicemap.models import Article, ArticleImage


@pytest.fixture
def tokens(app):
    with app.app_context(), db.session_scope() as s:
        s.execute(Article.__table__.delete())  # PostGIS tests share one database
        s.execute(ArticleImage.__table__.delete())
        _, admin = auth.create_manager(s, "Admin", admin=True)
    load(app, [feature("museum-a", 116.34, 39.90)])
    with app.app_context(), db.session_scope() as s:
        _, alice = auth.create_manager(s, "Alice", ["museum-a"])
    return {"admin": admin, "alice": alice}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


ARTICLE = {"section": "services", "slug": "family-services", "title_zh": "家庭服务",
           "title_en": "Services for families",
           "body_zh": "图书馆周末有**亲子阅读**。", "body_en": "Libraries hold **family reading** "
           "at weekends. See [the city](https://www.beijing.gov.cn/) or [the map](/).",
           "status": "published"}

HOSTILE = """# Title
<script>alert("body")</script>
<img src="x" onerror="alert('img')">
<a href="javascript:alert('raw')" onclick="alert('click')">raw link</a>
[md link](javascript:alert('md'))
[spaced](  JaVaScRiPt:alert('case'))
[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)
<svg onload="alert('svg')"></svg><iframe src="https://evil.example/"></iframe>
<style>body{display:none}</style>
![pic](https://evil.example/x.png" onerror="alert('alt'))
"""


class Tags(HTMLParser):
    """Every element and attribute of a page, to check what a browser would act on."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def parsed(html: str) -> list[tuple[str, dict[str, str | None]]]:
    p = Tags()
    p.feed(html)
    return p.tags


def rows(app) -> int:
    with app.app_context():
        return db.get_session().execute(select(func.count()).select_from(Article)).scalar_one()


def post(client, token, **changes):
    return client.post("/api/articles", json={**ARTICLE, **changes}, headers=bearer(token))


def test_administrator_publishes_and_anyone_reads(client, tokens):
    resp = post(client, tokens["admin"])
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["slug"] == "family-services"
    assert "<strong>family reading</strong>" in body["html_en"]
    listed = client.get("/api/articles").get_json()["articles"]
    assert [a["slug"] for a in listed] == ["family-services"]
    page = client.get("/info/services/family-services?lang=en")
    assert page.status_code == 200
    assert "Services for families" in page.get_data(as_text=True)


def test_only_administrators_write(app, client, tokens):
    assert client.post("/api/articles", json=ARTICLE).status_code == 401
    assert post(client, tokens["alice"]).status_code == 403
    assert rows(app) == 0


@pytest.mark.parametrize("changes, param", [
    ({"section": "gossip"}, "section"), ({"slug": "Has Spaces"}, "slug"),
    ({"slug": "-x"}, "slug"), ({"title_en": ""}, "title_en"), ({"status": "live"}, "status"),
    ({"body_zh": "", "body_en": " "}, "body_zh"), ({"extra": 1}, "extra"),
    ({"title_zh": 5}, "title_zh")])
def test_bad_article_is_400_naming_the_field_and_saves_nothing(app, client, tokens, changes,
                                                                param):
    resp = post(client, tokens["admin"], **changes)
    assert resp.status_code == 400
    assert resp.get_json()["param"] == param
    assert rows(app) == 0


def test_same_section_and_slug_twice_is_409(app, client, tokens):
    post(client, tokens["admin"])
    again = post(client, tokens["admin"])
    assert again.status_code == 409
    assert again.get_json()["param"] == "slug"
    assert rows(app) == 1


def test_drafts_are_not_public(client, tokens):
    post(client, tokens["admin"], status="draft")
    assert client.get("/api/articles").get_json()["articles"] == []
    assert client.get("/info/services/family-services").status_code == 404
    assert "Services for families" not in client.get("/info?lang=en").get_data(as_text=True)
    assert client.get("/api/articles?status=all").status_code == 401
    drafts = client.get("/api/articles?status=all", headers=bearer(tokens["admin"]))
    assert [a["status"] for a in drafts.get_json()["articles"]] == ["draft"]


def test_hostile_markdown_comes_out_inert(client, tokens):
    resp = post(client, tokens["admin"], body_en=HOSTILE, body_zh=HOSTILE)
    assert resp.status_code == 201
    page = client.get("/info/services/family-services?lang=en")
    html = page.get_data(as_text=True)
    tags = parsed(html)
    names = [t for t, _ in tags]
    for bad in ("script", "img", "iframe", "svg", "style"):
        assert bad not in names[names.index("main"):], bad
    for tag, attrs in tags:
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        for key in ("href", "src"):
            value = (attrs.get(key) or "").strip().lower()
            assert not value.startswith(("javascript:", "data:", "vbscript:")), (tag, attrs)


def test_page_keeps_its_content_security_policy(client, tokens):
    post(client, tokens["admin"], body_en=HOSTILE)
    page = client.get("/info/services/family-services?lang=en")
    csp = page.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert "'unsafe-inline'" not in directives["style-src"]
    assert directives["object-src"] == "'none'"
    assert not [t for t in parsed(page.get_data(as_text=True)) if t[0] == "script"]


def test_external_links_are_marked_and_own_links_are_not(client, tokens):
    post(client, tokens["admin"])
    tags = parsed(client.get("/info/services/family-services?lang=en").get_data(as_text=True))
    links = {a["href"]: a for t, a in tags if t == "a" and a.get("href") in (
        "https://www.beijing.gov.cn/", "/")}
    assert links["https://www.beijing.gov.cn/"]["rel"] == "noopener noreferrer nofollow"
    assert "rel" not in links["/"]
    html = articles.render("[x](https://example.org/)", "en")
    assert "↗" in html
    assert "(external link)" in html


@pytest.mark.parametrize("q, found", [("亲子阅读", 1), ("FAMILY READING", 1), ("家庭", 1),
                                      ("100%", 0), ("nothing like this", 0)])
def test_search_finds_titles_and_bodies_in_both_languages(client, tokens, q, found):
    post(client, tokens["admin"])
    api = client.get("/api/articles", query_string={"q": q}).get_json()["articles"]
    assert len(api) == found
    page = client.get("/info", query_string={"q": q, "lang": "en"}).get_data(as_text=True)
    assert ("Services for families" in page) == bool(found)


def test_sections_list_their_articles(client, tokens):
    post(client, tokens["admin"])
    post(client, tokens["admin"], section="rights", slug="play", title_en="The right to play")
    page = client.get("/info/rights?lang=en").get_data(as_text=True)
    assert "The right to play" in page
    assert "Services for families" not in page
    assert client.get("/info/gossip").status_code == 404


def test_administrator_edits_an_article(client, tokens):
    aid = post(client, tokens["admin"]).get_json()["id"]
    resp = client.put(f"/api/articles/{aid}", json={"body_en": "New *text*"},
                      headers=bearer(tokens["admin"]))
    assert resp.status_code == 200
    assert resp.get_json()["html_en"] == "<p>New <em>text</em></p>\n"
    assert resp.get_json()["title_en"] == "Services for families"
    assert client.put(f"/api/articles/{aid}", json={"body_en": "x"},
                      headers=bearer(tokens["alice"])).status_code == 403


def test_map_header_links_to_the_information_pages(client):
    html = client.get("/?lang=en").get_data(as_text=True)
    links = [a for t, a in parsed(html) if t == "a" and a.get("id") == "vm-info-link"]
    assert links[0]["href"] == "/info?lang=en"


# --- pictures ----------------------------------------------------------------------------------


def gps_jpeg() -> bytes:
    """A photo as phones make them: GPS position and camera make in EXIF."""
    from PIL import ExifTags, Image

    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (39.0, 54.0, 27.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (116.0, 23.0, 27.0)
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 140, 90)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def upload(client, token, data: bytes, name: str = "IMG_0001.JPG", **form):
    return client.post("/api/articles/images", headers=bearer(token) if token else {},
                       data={"file": (io.BytesIO(data), name), **form})


def stored_files(app) -> list[Path]:
    root = Path(app.config["MEDIA_DIR"])
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not {"tmp", "locks"} & set(p.relative_to(root).parts))


def image_rows(app) -> int:
    with app.app_context():
        return db.get_session().execute(
            select(func.count()).select_from(ArticleImage)).scalar_one()


def test_uploaded_picture_is_served_without_exif_or_gps(app, client, tokens):
    original = gps_jpeg()
    assert b"GPS" in original or b"Exif" in original
    resp = upload(client, tokens["admin"], original, alt="Children in the park")
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["url"] == f"/media/articles/{body['id']}.jpg"
    assert body["markdown"] == f"![Children in the park]({body['url']})"
    assert "warning" not in body
    served = client.get(body["url"])
    assert served.status_code == 200
    assert served.mimetype == "image/jpeg"
    assert b"Exif" not in served.data
    assert b"GPS" not in served.data
    assert b"PhoneMaker" not in served.data
    assert hashlib.sha256(served.data).hexdigest() == body["id"]
    assert [p.name for p in stored_files(app)] == [body["id"]]
    assert "immutable" in served.headers["Cache-Control"]
    assert served.cache_control.max_age >= 30 * 24 * 3600


def test_same_picture_again_is_the_same_file(app, client, tokens):
    first = upload(client, tokens["admin"], gps_jpeg()).get_json()
    again = upload(client, tokens["admin"], gps_jpeg())
    assert again.status_code == 200
    assert again.get_json()["id"] == first["id"]
    assert image_rows(app) == 1


def test_picture_without_alt_text_warns(client, tokens):
    body = upload(client, tokens["admin"], gps_jpeg()).get_json()
    assert body["markdown"].startswith("![](")
    assert "alt text" in body["warning"]


def test_alt_text_cannot_break_out_of_the_markdown(client, tokens):
    body = upload(client, tokens["admin"], gps_jpeg(), alt="a](javascript:x) [b\nc").get_json()
    assert body["markdown"] == f"![a (javascript:x) b c]({body['url']})"


def test_only_administrators_upload_pictures(app, client, tokens):
    assert upload(client, None, gps_jpeg()).status_code == 401
    assert upload(client, tokens["alice"], gps_jpeg()).status_code == 403
    assert image_rows(app) == 0
    assert stored_files(app) == []


@pytest.mark.parametrize("data, name, status", [
    (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script>'
     b"</svg>", "x.svg", 422),
    (b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "x.jpg", 422),
    (b"\xff\xd8\xff\xe0" + b"\0" * 64, "broken.jpg", 422)])
def test_refused_picture_answers_4xx_and_stores_nothing(app, client, tokens, data, name,
                                                        status):
    resp = upload(client, tokens["admin"], data, name)
    assert resp.status_code == status
    assert resp.get_json()["param"] == "file"
    assert image_rows(app) == 0
    assert stored_files(app) == []


def test_oversize_picture_is_413_and_stores_nothing(app, client, tokens):
    app.config["MAX_UPLOAD_BYTES"] = 10_000
    resp = upload(client, tokens["admin"], gps_jpeg() + b"\0" * 20_000)
    assert resp.status_code == 413
    assert image_rows(app) == 0
    assert stored_files(app) == []


def test_missing_file_field_is_400_naming_it(client, tokens):
    resp = client.post("/api/articles/images", headers=bearer(tokens["admin"]),
                       data={"alt": "x"})
    assert resp.status_code == 400
    assert resp.get_json()["param"] == "file"


def test_unknown_picture_is_404(client, tokens):
    assert client.get(f"/media/articles/{'a' * 64}.jpg").status_code == 404
    assert client.get("/media/articles/nothex.jpg").status_code == 404


def test_article_shows_its_uploaded_picture(client, tokens):
    image = upload(client, tokens["admin"], gps_jpeg(), alt="The park").get_json()
    resp = post(client, tokens["admin"], body_en=f"Look:\n\n{image['markdown']}\n")
    assert resp.status_code == 201
    html = client.get("/info/services/family-services?lang=en").get_data(as_text=True)
    imgs = [a for t, a in parsed(html) if t == "img"]
    assert imgs == [{"src": image["url"], "alt": "The park", "width": str(image["width"]),
                     "height": str(image["height"])}]
    assert client.get(imgs[0]["src"]).status_code == 200


@pytest.mark.parametrize("src", [
    "https://evil.example/x.png", "//evil.example/x.png", "data:image/png;base64,iVBORw0KGgo=",
    "javascript:alert(1)", "/media/works/abc/display", f"/media/articles/{'b' * 64}.jpg",
    f"/media/articles/{'c' * 64}.jpg?x=1"])
def test_other_image_sources_are_removed(client, tokens, src):
    resp = post(client, tokens["admin"], body_en=f"![shown as text]({src})\n\n"
                f'<img src="{src}">')
    assert resp.status_code == 201
    html = client.get("/info/services/family-services?lang=en").get_data(as_text=True)
    assert [a for t, a in parsed(html) if t == "img"] == []
    assert "shown as text" in html


@pytest.mark.parametrize("src", [
    "https://evil.example/x.png", "data:image/png;base64,iVBORw0KGgo=", "javascript:alert(1)",
    f"/media/articles/{'d' * 64}.jpg/../../works/x"])
def test_sanitiser_drops_an_img_whose_src_is_not_local(src):
    # The allow-list's second guard, below the renderer (which never makes such an img).
    assert articles.clean(f'<p><img src="{src}" alt="a" onerror="x()"></p>') == "<p></p>"


def test_sanitiser_keeps_a_local_picture():
    local = f'<img src="/media/articles/{"d" * 64}.jpg" alt="a" onerror="x()">'
    assert articles.clean(local) == local.replace(' onerror="x()"', "")
    assert "<img" not in articles.render(local)  # raw HTML in Markdown stays text


def test_fsck_is_clean_and_backup_holds_the_picture(app, client, tokens, tmp_path):
    from voicemap import backup, clips
    from voicemap.storage import media_store

    image = upload(client, tokens["admin"], gps_jpeg(), alt="x").get_json()
    post(client, tokens["admin"], body_en=image["markdown"])
    with app.app_context():
        report = clips.fsck(db.get_session(), media_store())
        assert report.orphan_files == []
        assert report.missing_files == []
        done = backup.backup(app.extensions["voicemap.engine"], media_store(),
                             tmp_path / "b.tar")
    with tarfile.open(done.path) as tar:
        names = tar.getnames()
    assert f"media/renditions/{image['id'][:2]}/{image['id']}" in names


def test_editor_uploads_a_picture_and_keeps_the_text(client, tokens):
    from test_activities import manage_sign_in

    csrf = manage_sign_in(client, tokens["admin"])
    form = {**ARTICLE, "body_en": "Unsaved text", "csrf": csrf, "action": "upload",
            "image_alt": ""}
    resp = client.post("/manage/articles", data={
        **form, "image": (io.BytesIO(gps_jpeg()), "IMG_0002.JPG")},
        content_type="multipart/form-data")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert "Unsaved text" in page
    found = re.search(r'id="image_markdown" readonly value="(!\[\]\(/media/articles/'
                      r'[0-9a-f]{64}\.jpg\))"', page)
    assert found is not None
    assert "no alt text" in page
    refused = client.post("/manage/articles", data={
        **form, "image": (io.BytesIO(b"<svg/>"), "x.svg")}, content_type="multipart/form-data")
    assert refused.status_code == 422
    assert "Unsaved text" in refused.get_data(as_text=True)
    # Enter in a field presses the first button (upload) with no picture: a preview.
    enter = client.post("/manage/articles", data={**form, "image": (io.BytesIO(b""), "")},
                        content_type="multipart/form-data")
    assert enter.status_code == 200
    assert "<h2>预览</h2>" in enter.get_data(as_text=True)  # Chinese by default
    assert client.get("/api/articles?status=all", headers=bearer(tokens["admin"])
                      ).get_json()["articles"] == []
