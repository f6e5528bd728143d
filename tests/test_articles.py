"""Information pages on both backends: administrators write, Markdown comes out inert,
drafts stay private, search finds both languages, pages keep their CSP."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from helpers import feature, load
from sqlalchemy import func, select

from voicemap import articles, auth, db
from voicemap.models import Article


@pytest.fixture
def tokens(app):
    with app.app_context(), db.session_scope() as s:
        s.execute(Article.__table__.delete())  # PostGIS tests share one database
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
