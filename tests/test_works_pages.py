"""The family pages of children's works (submission, receipt, withdrawal, gallery, a work's
page) and their review in /manage; on both backends."""

from __future__ import annotations

import html
import io
import re

import pytest
from test_works import (
    CONTACT,
    FORM,
    GUARDIAN,
    admin_token,
    approve,
    count_works,
    media_files,
    open_campaign,
    png,
    post,
)
from test_works import app as app  # noqa: F401  the same app, with a loose submission limit

from voicemap import auth, db


def send_form(client, lang="en", file: tuple[bytes, str] | None = None, **over):
    data = {**FORM, **over}
    data = {k: v for k, v in data.items() if v is not None}
    # as the page sends it: the checkbox (when ticked) then the hidden "false", and the
    # three file inputs, of which the unused are empty
    data["consent_public"] = ["true", "false"] if data.get("consent_public") == "true" \
        else ["false"]
    files = [(io.BytesIO(b""), ""), (io.BytesIO(b""), "")]
    if file is not None:
        files.insert(0, (io.BytesIO(file[0]), file[1]))
    data["file"] = files
    return client.post(f"/campaigns/me-and-my-city/submit?lang={lang}", data=data,
                       content_type="multipart/form-data")


@pytest.mark.parametrize("lang,words", [("zh", "哪些内容公开"), ("en", "What is public")])
def test_the_submission_page_explains_privacy_in_both_languages(app, client, lang, words):
    open_campaign(app)
    r = client.get(f"/campaigns/me-and-my-city/submit?lang={lang}")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert words in page
    assert 'accept="image/*"' in page
    assert 'capture="environment"' in page
    assert 'accept="audio/*"' in page
    assert "<script>" not in page  # no inline script: the CSP allows none
    assert "'unsafe-inline'" not in r.headers["Content-Security-Policy"]


def test_a_draft_campaign_has_no_submission_page(app, client):
    open_campaign(app, status="draft")
    assert client.get("/campaigns/me-and-my-city/submit").status_code == 404


def test_the_form_ends_on_a_receipt_with_the_withdrawal_code(app, client):
    open_campaign(app)
    r = send_form(client, file=(png(), "photo.png"), kind="photo", consent_public="true")
    assert r.status_code == 201
    page = r.get_data(as_text=True)
    code = re.search(r'id="vm-withdraw-code">([^<]+)<', page).group(1)
    wid = re.search(r'id="vm-work-id">([^<]+)<', page).group(1)
    assert r.headers["Cache-Control"] == "no-store"
    assert count_works(app) == 1
    done = client.post("/works/withdraw?lang=en", data={"work": wid, "code": code})
    assert "deleted everywhere" in done.get_data(as_text=True)
    assert count_works(app) == 0
    assert media_files(app) == []


def test_a_bad_field_shows_the_form_again_naming_it(app, client):
    open_campaign(app)
    r = send_form(client, narrator_name="Lily Zhang")
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    assert re.search(r'name="narrator_name"[^>]*aria-invalid="true"', page)
    assert 'value="My hutong"' in page  # what was typed is kept
    assert count_works(app) == 0


def test_the_form_on_a_closed_campaign_says_so(app, client):
    open_campaign(app, status="closed")
    assert send_form(client).status_code == 409
    assert count_works(app) == 0


def test_a_work_page_shows_the_work_with_its_story_as_alt_text(app, client):
    open_campaign(app)
    token = admin_token(app)
    story = "My <b>drawing</b> of the Drum Tower.\nIt is red."
    wid = post(client, file=(png(), "p.png"), kind="painting", story=story).get_json()["id"]
    approve(client, token, wid)
    page = client.get(f"/works/{wid}?lang=en").get_data(as_text=True)
    assert "<b>drawing</b>" not in page  # escaped
    assert html.escape(story, quote=False) in page  # line break kept (pre-wrap)
    assert re.search(r'<img src="/media/works/[0-9a-f]+/display" alt="My &lt;b&gt;drawing',
                     page)
    assert '<meta property="og:title" content="My hutong">' in page
    assert re.search(r'og:image" content="http://localhost/media/works/\w+/display"', page)
    assert f"/works/{wid}/qr.svg" in page
    assert "Lily" in page
    assert client.get(f"/works/{wid}/qr.svg").mimetype == "image/svg+xml"


def test_the_gallery_filters_by_kind_and_age_group(app, client):
    open_campaign(app)
    token = admin_token(app)
    young = post(client, narrator_age="5", title="Young one").get_json()["id"]
    older = post(client, file=(png(), "p.png"), kind="painting", narrator_age="12",
                 title="Older one").get_json()["id"]
    for wid in (young, older):
        approve(client, token, wid)
    every = client.get("/works?lang=en").get_data(as_text=True)
    assert "Young one" in every
    assert "Older one" in every
    painting = client.get("/works?kind=painting").get_data(as_text=True)
    assert "Older one" in painting
    assert "Young one" not in painting
    small = client.get("/works?age_group=3-6").get_data(as_text=True)
    assert "Young one" in small
    assert "Older one" not in small


def test_a_missing_work_page_is_404(app, client):
    assert client.get("/works/0123456789abcdef").status_code == 404


# --- /manage ---------------------------------------------------------------------------------


def csrf(client, path="/manage/") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def sign_in(client, token):
    r = client.post("/manage/signin", data={"token": token, "csrf": csrf(client)})
    assert r.status_code == 302
    return csrf(client)


def test_administrators_review_works_in_manage_with_the_consent_record(app, client):
    open_campaign(app)
    wid = post(client, file=(png(), "p.png"), kind="painting").get_json()["id"]
    token = sign_in(client, admin_token(app))
    page = client.get("/manage/works").get_data(as_text=True)
    assert GUARDIAN in page
    assert CONTACT in page
    assert f"/manage/works/{wid}/display" in page
    assert client.get(f"/manage/works/{wid}/display").status_code == 200  # not yet public
    r = client.post(f"/manage/works/{wid}/approve", data={"csrf": token})
    assert r.status_code == 303
    assert client.get(f"/api/works/{wid}").status_code == 200
    client.post(f"/manage/works/{wid}/flag", data={"csrf": token, "reason": "a face"})
    assert client.get(f"/api/works/{wid}").status_code == 404


def test_managers_who_are_not_administrators_cannot_review_works(app, client):
    from helpers import feature, load

    open_campaign(app)
    load(app, [feature("museum-a", 116.34, 39.90)])
    with app.app_context(), db.session_scope() as s:
        alice = auth.create_manager(s, "Alice", ["museum-a"])[1]
    sign_in(client, alice)
    assert client.get("/manage/works").status_code == 403
    assert client.get("/manage/campaigns").status_code == 403


def test_administrators_create_campaigns_and_set_their_status(app, client):
    token = sign_in(client, admin_token(app))
    r = client.post("/manage/campaigns", data={
        "csrf": token, "id": "autumn", "title_zh": "秋天", "title_en": "Autumn",
        "opens": "2026-09-01T09:00", "closes": "2026-10-01T09:00",
        "kinds": ["painting", "song"], "age_groups": "3-6,7-12", "status": "draft"})
    assert r.status_code == 303
    assert "autumn" in client.get("/manage/campaigns").get_data(as_text=True)
    assert client.get("/api/campaigns/autumn").status_code == 404  # a draft
    client.post("/manage/campaigns/autumn/status", data={"csrf": token, "status": "closed"})
    body = client.get("/api/campaigns/autumn").get_json()
    assert body["status"] == "closed"
    assert body["kinds"] == ["painting", "song"]
    assert body["opens"] == "2026-09-01T09:00:00+08:00"
