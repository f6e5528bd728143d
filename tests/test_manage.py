"""The /manage pages: token sign-in, CSRF, upload, review and delete through forms."""

from __future__ import annotations

import re

import pytest
from helpers import feature, load, speech

from voicemap import auth, db


@pytest.fixture
def tokens(app):
    load(app, [feature("museum-a", 116.34, 39.90, name_en="<b>Museum A</b>"),
               feature("park-b", 116.40, 39.95, "park")])
    with app.app_context(), db.session_scope() as s:
        _, admin = auth.create_manager(s, "Admin", admin=True)
        _, alice = auth.create_manager(s, "Alice", ["museum-a"])
    return {"admin": admin, "alice": alice}


def fetch(client, url) -> int:
    """GET a file response, read it whole and close it; its status."""
    with client.get(url) as r:
        r.get_data()
        return r.status_code


def csrf(client, path="/manage/") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def sign_in(client, token):
    r = client.post("/manage/signin", data={"token": token, "csrf": csrf(client)})
    assert r.status_code == 302
    return csrf(client)


def test_sign_in_needs_a_valid_token(client, tokens):
    page = client.get("/manage/")
    assert page.status_code == 200
    assert "Sign in" in page.get_data(as_text=True)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    bad = client.post("/manage/signin", data={"token": "vm_wrong", "csrf": csrf(client)})
    assert bad.status_code == 401


def test_forms_without_csrf_are_refused(client, tokens):
    assert client.post("/manage/signin", data={"token": tokens["alice"]}).status_code == 400
    sign_in(client, tokens["alice"])
    r = client.post("/manage/venues/museum-a/clips", data={"lang": "en"})
    assert r.status_code == 400


def test_manager_sees_only_their_venues_escaped(client, tokens):
    sign_in(client, tokens["alice"])
    page = client.get("/manage/").get_data(as_text=True)
    assert "&lt;b&gt;Museum A&lt;/b&gt;" in page
    assert "<b>Museum A</b>" not in page
    assert "park-b" not in page
    assert client.get("/manage/venues/park-b").status_code == 403
    assert client.get("/manage/review").status_code == 403


def test_upload_review_and_delete_through_the_pages(app, client, tokens, tmp_path):
    token = sign_in(client, tokens["alice"])
    src = speech(tmp_path, "g.webm", ffmpeg_args=("-c:a", "libopus"))
    with open(src, "rb") as fh:
        r = client.post("/manage/venues/museum-a/clips", data={
            "csrf": token, "file": (fh, "recording.webm"), "lang": "en",
            "narrator_name": "Lily", "narrator_age": "9", "transcript": "Hello",
            "consent_by": "Her mother", "consent": "true"},
            content_type="multipart/form-data", headers={"Accept": "application/json"})
    assert r.status_code == 201, r.get_json()
    clip_id = r.get_json()["id"]
    page = client.get("/manage/venues/museum-a").get_data(as_text=True)
    assert clip_id in page
    assert "pending" in page
    assert fetch(client, f"/manage/clips/{clip_id}.mp3") == 200

    # Without consent the form is refused with the reason, and nothing is stored.
    with open(src, "rb") as fh:
        r = client.post("/manage/venues/museum-a/clips", data={
            "csrf": token, "file": (fh, "r.webm"), "lang": "en", "narrator_name": "Lily",
            "narrator_age": "9", "transcript": "Hello", "consent_by": "Her mother"},
            content_type="multipart/form-data", follow_redirects=True)
    assert "guardian consent is required" in r.get_data(as_text=True)

    client.post("/manage/signout", data={"csrf": token})
    admin_csrf = sign_in(client, tokens["admin"])
    queue = client.get("/manage/review").get_data(as_text=True)
    assert clip_id in queue
    r = client.post(f"/manage/clips/{clip_id}/publish", data={"csrf": admin_csrf})
    assert r.status_code == 303
    assert fetch(client, f"/audio/{clip_id}.mp3") == 200
    r = client.post(f"/manage/clips/{clip_id}/delete", data={"csrf": admin_csrf})
    assert r.status_code == 303
    assert client.get(f"/audio/{clip_id}.mp3").status_code == 404


def test_non_ascii_csrf_is_400(client, tokens):
    csrf(client)
    r = client.post("/manage/signin", data={"token": tokens["alice"], "csrf": "é"})
    assert r.status_code == 400


def test_sign_out_ends_every_session_of_that_manager(app, client, tokens):
    sign_in(client, tokens["alice"])
    other = app.test_client()
    sign_in(other, tokens["alice"])  # the same manager on a second device
    token = csrf(client)
    assert "museum-a" in other.get("/manage/").get_data(as_text=True)
    client.post("/manage/signout", data={"csrf": token})
    assert "Sign in" in other.get("/manage/").get_data(as_text=True)


def test_consent_record_is_shown_only_to_uploader_and_admin(app, client, tokens, tmp_path):
    with app.app_context(), db.session_scope() as s:
        _, carol = auth.create_manager(s, "Carol", ["museum-a"])
    from helpers import published_clip

    published_clip(app, "museum-a", "en")  # uploaded from the command line
    sign_in(client, carol)
    page = client.get("/manage/venues/museum-a").get_data(as_text=True)
    assert "Parent of the narrator" not in page
    client.post("/manage/signout", data={"csrf": csrf(client)})
    sign_in(client, tokens["admin"])
    assert "Parent of the narrator" in client.get("/manage/venues/museum-a").get_data(
        as_text=True)
