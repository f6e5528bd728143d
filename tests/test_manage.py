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
    page = client.get("/manage/?lang=en")
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
    assert "场馆museum-a" in page  # Chinese by default: the Chinese name
    page = client.get("/manage/?lang=en").get_data(as_text=True)
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
    assert "待审核" in page  # the status, in the page's language (zh by default)
    assert fetch(client, f"/manage/clips/{clip_id}.mp3") == 200

    # Without consent the form is refused with the reason, and nothing is stored.
    with open(src, "rb") as fh:
        r = client.post("/manage/venues/museum-a/clips", data={
            "csrf": token, "file": (fh, "r.webm"), "lang": "en", "narrator_name": "Lily",
            "narrator_age": "9", "transcript": "Hello", "consent_by": "Her mother"},
            content_type="multipart/form-data", follow_redirects=True)
    assert r.status_code == 400
    assert "需要监护人同意" in r.get_data(as_text=True)

    client.post("/manage/signout", data={"csrf": token})
    admin_csrf = sign_in(client, tokens["admin"])
    queue = client.get("/manage/review").get_data(as_text=True)
    assert clip_id in queue
    r = client.post(f"/manage/clips/{clip_id}/publish", data={"csrf": admin_csrf})
    assert r.status_code == 303
    assert fetch(client, f"/audio/{clip_id}.mp3") == 200
    r = client.post(f"/manage/clips/{clip_id}/delete",
                    data={"csrf": admin_csrf, "confirm": clip_id})
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
    assert 'name="token"' in other.get("/manage/").get_data(as_text=True)


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


# --- language ------------------------------------------------------------------------------

CJK = re.compile(r"[\u3400-\u9fff\uff01-\uff5e]")


def visible_text(page: str) -> str:
    """The page's text without tags, the language switch (which names the other language)
    and the code sample."""
    page = re.sub(r'<a class="lang".*?</a>', "", page, flags=re.S)
    page = re.sub(r"<code>.*?</code>", "", page)
    return re.sub(r"<[^>]+>", " ", page)


def test_pages_follow_the_chosen_language_only(client, tokens):
    en = client.get("/manage/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    text = en.get_data(as_text=True)
    assert '<html lang="en">' in text
    assert "Sign in" in text
    assert not CJK.search(visible_text(text)), CJK.findall(visible_text(text))
    zh = client.get("/manage/?lang=zh").get_data(as_text=True)
    assert '<html lang="zh-CN">' in zh and "登录" in zh
    assert not re.search(r"[A-Za-z]{4,}", visible_text(zh).replace("voicemap", "")), \
        re.findall(r"[A-Za-z]{4,}", visible_text(zh))
    # The choice is remembered (in the session) through sign-in, forms and redirects.
    wrong = client.post("/manage/signin", data={"token": "vm_wrong", "csrf": csrf(client)})
    assert "令牌无效" in wrong.get_data(as_text=True)
    client.get("/manage/?lang=en")
    wrong = client.post("/manage/signin", data={"token": "vm_wrong", "csrf": csrf(client)})
    assert "That token is not valid." in wrong.get_data(as_text=True)
    sign_in(client, tokens["admin"])
    page = client.get("/manage/").get_data(as_text=True)
    assert "My venues" in page and "Museums" in page and "我的场馆" not in page
    page = client.get("/manage/venues/museum-a").get_data(as_text=True)
    assert "Add a recording" in page and "添加录音" not in page
    assert 'href="/manage/venues/museum-a?lang=zh"' in page  # the switch keeps the page
    page = client.get("/manage/venues/museum-a?lang=zh").get_data(as_text=True)
    assert "添加录音" in page and "Add a recording" not in page
    assert "博物馆" in client.get("/manage/").get_data(as_text=True)  # category names
    # Error pages too; an expired form is a 400 page in the chosen language.
    client.post("/manage/signout", data={"csrf": csrf(client)})
    sign_in(client, tokens["alice"])
    denied = client.get("/manage/venues/park-b?lang=en")
    assert denied.status_code == 403 and "You do not manage this venue." in denied.get_data(
        as_text=True)
    denied = client.get("/manage/venues/park-b?lang=zh")
    assert "您不是这个场馆的管理员" in denied.get_data(as_text=True)
    expired = client.post("/manage/venues/museum-a/clips", data={"csrf": "old"})
    assert expired.status_code == 400 and "表单已过期" in expired.get_data(as_text=True)
    missing = client.get("/manage/clips/nope/edit?lang=en")
    assert missing.status_code == 404 and "No such page or clip." in missing.get_data(
        as_text=True)


def post_upload(client, token, src, lang="zh", accept=None, **fields):
    data = {"csrf": token, "lang": "en", "narrator_name": "Lily", "narrator_age": "9",
            "title": "The bells", "transcript": "Hello bells", "consent_by": "Her mother",
            "consent": "true", **fields}
    with open(src, "rb") as fh:
        return client.post(f"/manage/venues/museum-a/clips?lang={lang}",
                           data={**data, "file": (fh, src.name)},
                           content_type="multipart/form-data",
                           headers={"Accept": accept} if accept else {})


def test_a_refused_upload_keeps_what_was_typed_and_says_why_in_the_page_language(
        client, tokens, tmp_path):
    token = sign_in(client, tokens["alice"])
    junk = tmp_path / "notes.mp3"
    junk.write_bytes(b"this is not audio at all " * 200)
    r = post_upload(client, token, junk, "zh", transcript="古老的<编钟>", consent_by="妈妈")
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert "不是支持的录音格式" in page
    assert "not a supported audio recording" not in page
    # Everything typed is back in the form (escaped), but not the file.
    assert 'value="Lily"' in page and 'value="9"' in page and 'value="The bells"' in page
    assert ">古老的&lt;编钟&gt;</textarea>" in page and 'value="妈妈"' in page
    assert '<option value="en" selected>' in page
    assert re.search(r'name="consent" value="true" required checked', page)
    assert re.search(r'<input id="file"[^>]*aria-invalid="true"', page)
    # The language switch of the refused form's page leads to the venue's page.
    assert 'class="lang" href="/manage/venues/museum-a?lang=en"' in page

    r = post_upload(client, token, junk, "en", narrator_name="Lily Smith")
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    assert "first name only" in page and 'value="Lily Smith"' in page
    assert re.search(r'<input id="narrator_name"[^>]*aria-invalid="true"', page)
    short = speech(tmp_path, "short.wav")
    r = post_upload(client, token, short, "zh", consent="")
    assert r.status_code == 400 and "需要监护人同意" in r.get_data(as_text=True)
    # The recorder's JSON keeps the English error and code, with the page's text beside.
    r = post_upload(client, token, junk, "zh", accept="application/json")
    body = r.get_json()
    assert r.status_code == 422 and body["code"] == "not_audio"
    assert "not a supported audio recording" in body["error"]
    assert "不是支持的录音格式" in body["message"]
    assert client.get("/api/venues/museum-a/clips").get_json()["clips"] == []


def test_a_fresh_upload_is_shown_first_with_its_processed_result(client, tokens, tmp_path):
    token = sign_in(client, tokens["alice"])
    src = speech(tmp_path, "g.wav")
    first = post_upload(client, token, src, title="Older clip")
    assert first.status_code == 303
    r = post_upload(client, token, speech(tmp_path, "h.mp3"), title="Newest clip")
    assert r.status_code == 303
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "“Newest clip”" in page  # the message
    fresh, form = page.index('class="fresh"'), page.index('id="upload"')
    assert fresh < page.index(">Newest clip") < form < page.index(">Older clip")
    # its processed result: duration and loudness, and a player for the processed file
    fresh_part = page[fresh:form]
    assert re.search(r"\d+\.\d 秒 · -1[4-8]\.\d LUFS", fresh_part), fresh_part
    assert "/manage/clips/" in fresh_part and ".mp3" in fresh_part


# --- deleting, editing, replacing ------------------------------------------------------------


def uploaded(client, token, tmp_path, title="The bells") -> str:
    r = post_upload(client, token, speech(tmp_path, f"{title[:3]}.wav"), title=title,
                    accept="application/json")
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def store_files(app) -> set[tuple[str, str]]:
    from voicemap.storage import media_store

    with app.app_context():
        store = media_store()
        return {(kind, sha) for kind in ("published", "originals") for sha in store.hashes(kind)}


def fsck_clean(app) -> bool:
    from voicemap import clips
    from voicemap.storage import media_store

    with app.app_context():
        return clips.fsck(db.get_session(), media_store()).clean


def test_deleting_asks_for_confirmation_naming_the_clip(app, client, tokens, tmp_path):
    token = sign_in(client, tokens["alice"])
    clip_id = uploaded(client, token, tmp_path, "Bronze <bells>")
    venue = client.get("/manage/venues/museum-a").get_data(as_text=True)
    # The venue page has no one-tap delete: a link to the confirmation step.
    assert f'action="/manage/clips/{clip_id}/delete"' not in venue
    assert f'href="/manage/clips/{clip_id}/delete"' in venue
    ask = client.get(f"/manage/clips/{clip_id}/delete?lang=en")
    assert ask.status_code == 200
    text = ask.get_data(as_text=True)
    assert "Delete “Bronze &lt;bells&gt;”?" in text and "permanent" in text
    assert f'name="confirm" value="{clip_id}"' in text
    # A post without the confirmation (an old form, a double tap) only asks again.
    again = client.post(f"/manage/clips/{clip_id}/delete", data={"csrf": token})
    assert again.status_code == 200 and "Delete “Bronze &lt;bells&gt;”?" in again.get_data(
        as_text=True)
    assert client.get(f"/manage/clips/{clip_id}.mp3").status_code == 200
    assert len(store_files(app)) == 2
    done = client.post(f"/manage/clips/{clip_id}/delete",
                       data={"csrf": token, "confirm": clip_id}, follow_redirects=True)
    assert "“Bronze &lt;bells&gt;” was deleted everywhere." in done.get_data(as_text=True)
    assert client.get(f"/manage/clips/{clip_id}.mp3").status_code == 404
    assert store_files(app) == set() and fsck_clean(app)
    # Another venue's manager cannot even see the step.
    clip_id = uploaded(client, token, tmp_path, "Other")
    client.post("/manage/signout", data={"csrf": csrf(client)})
    with app.app_context(), db.session_scope() as s:
        _, bob = auth.create_manager(s, "Bob", ["park-b"])
    bob_csrf = sign_in(client, bob)
    assert client.get(f"/manage/clips/{clip_id}/delete").status_code == 404
    r = client.post(f"/manage/clips/{clip_id}/delete", data={"csrf": bob_csrf,
                                                             "confirm": clip_id})
    assert r.status_code == 404


def test_editing_text_and_seeing_the_reviewers_decision(app, client, tokens, tmp_path):
    token = sign_in(client, tokens["alice"])
    clip_id = uploaded(client, token, tmp_path)
    client.post("/manage/signout", data={"csrf": token})
    admin = sign_in(client, tokens["admin"])
    client.post(f"/manage/clips/{clip_id}/reject",
                data={"csrf": admin, "reason": "Say the museum's name"})
    client.post("/manage/signout", data={"csrf": admin})
    token = sign_in(client, tokens["alice"])
    page = client.get("/manage/venues/museum-a?lang=en").get_data(as_text=True)
    assert "Reviewer&#39;s decision: rejected" in page and "Say the museum&#39;s name" in page
    form = client.get(f"/manage/clips/{clip_id}/edit").get_data(as_text=True)
    assert 'value="The bells"' in form and ">Hello bells</textarea>" in form
    bad = client.post(f"/manage/clips/{clip_id}/edit",
                      data={"csrf": token, "title": "New", "transcript": "  "})
    assert bad.status_code == 400 and "A transcript" in bad.get_data(as_text=True)
    assert 'value="New"' in bad.get_data(as_text=True)
    ok = client.post(f"/manage/clips/{clip_id}/edit",
                     data={"csrf": token, "title": "Bells of the Palace",
                           "transcript": "Hello bells at the museum"})
    assert ok.status_code == 303
    # Answering a rejection sends the clip back to review, the old decision cleared.
    with app.app_context():
        from voicemap import clips
        clip = clips.get(db.get_session(), clip_id)
        assert (clip.title, clip.transcript, clip.status, clip.reject_reason) == (
            "Bells of the Palace", "Hello bells at the museum", "pending", None)
    client.post("/manage/signout", data={"csrf": token})
    admin = sign_in(client, tokens["admin"])
    client.post(f"/manage/clips/{clip_id}/publish", data={"csrf": admin})
    # A published clip stays published when its text is corrected.
    client.post(f"/manage/clips/{clip_id}/edit",
                data={"csrf": admin, "title": "Bells", "transcript": "Hello bells"})
    assert client.get(f"/api/clips/{clip_id}").get_json()["status"] == "published"
    page = client.get("/manage/venues/museum-a?lang=zh").get_data(as_text=True)
    assert "审核结果：已发布" in page


def test_replacing_the_audio_sends_it_back_to_review_and_leaves_no_orphans(
        app, client, tokens, tmp_path):
    token = sign_in(client, tokens["alice"])
    clip_id = uploaded(client, token, tmp_path)
    client.post("/manage/signout", data={"csrf": token})
    admin = sign_in(client, tokens["admin"])
    client.post(f"/manage/clips/{clip_id}/publish", data={"csrf": admin})
    client.post("/manage/signout", data={"csrf": admin})
    token = sign_in(client, tokens["alice"])
    before = store_files(app)
    old_audio = client.get(f"/audio/{clip_id}.mp3").get_data()
    # A refused replacement changes nothing.
    junk = tmp_path / "junk.m4a"
    junk.write_bytes(b"nope" * 500)
    with open(junk, "rb") as fh:
        r = client.post(f"/manage/clips/{clip_id}/replace?lang=en",
                        data={"csrf": token, "file": (fh, "junk.m4a")},
                        content_type="multipart/form-data")
    assert r.status_code == 422 and "not a supported audio recording" in r.get_data(
        as_text=True)
    assert store_files(app) == before
    assert client.get(f"/api/clips/{clip_id}").get_json()["status"] == "published"
    src = speech(tmp_path, "new.ogg", "zh", ffmpeg_args=("-c:a", "libopus"))
    with open(src, "rb") as fh:
        r = client.post(f"/manage/clips/{clip_id}/replace",
                        data={"csrf": token, "file": (fh, "new.ogg")},
                        content_type="multipart/form-data")
    assert r.status_code == 303
    assert f"uploaded={clip_id}" in r.headers["Location"]
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert page.index('class="fresh"') < page.index(f'id="clip-{clip_id}"') < page.index(
        'id="upload"')
    assert client.get(f"/audio/{clip_id}.mp3").status_code == 404  # waiting for review
    new_audio = client.get(f"/manage/clips/{clip_id}.mp3").get_data()
    assert new_audio != old_audio
    after = store_files(app)
    assert len(after) == 2 and not (after & before)  # the old files are gone
    assert fsck_clean(app)
    with app.app_context():
        from voicemap import clips
        clip = clips.get(db.get_session(), clip_id)
        assert (clip.status, clip.title, clip.original_format) == ("pending", "The bells",
                                                                   "ogg")


# --- administrators' venue list, posters ------------------------------------------------------


def test_administrators_search_filter_and_page_the_venues(app, client, tokens):
    from helpers import random_features

    many = random_features(120)
    for i, f in enumerate(many):
        f["properties"]["district"] = ("Chaoyang", "Haidian", "Xicheng", "Dongcheng")[i % 4]
    many[7]["properties"].update(name_zh="故宫博物院", name_en="The Palace Museum")
    load(app, many)
    sign_in(client, tokens["admin"])

    def listed(query=""):
        page = client.get(f"/manage/?lang=en&{query}").get_data(as_text=True)
        return page, re.findall(r'href="/manage/venues/([\w-]+)"', page)

    page, ids = listed()
    assert len(ids) == 20 and "122 venues" in page and "Page 1 of 7" in page
    page, last = listed("page=7")
    assert len(last) == 2 and not set(last) & set(ids)
    everything = set()
    for n in range(1, 8):
        everything |= set(listed(f"page={n}")[1])
    assert len(everything) == 122
    assert listed("q=palace")[1] == ["v00007"]
    assert listed("q=故宫")[1] == ["v00007"]
    assert listed("q=%25")[1] == []  # a LIKE wildcard is searched for, not matched
    page, ids = listed("district=Haidian&category=park")
    with app.app_context():
        from voicemap.models import Venue
        want = sorted(v.id for v in db.get_session().query(Venue)
                      .filter_by(district="Haidian", category="park"))
    assert sorted(ids) == want and want
    zh = client.get("/manage/?lang=zh").get_data(as_text=True)
    assert '<option value="Haidian">海淀区</option>' in zh
    # A manager's list is theirs only, whatever is asked.
    client.post("/manage/signout", data={"csrf": csrf(client)})
    sign_in(client, tokens["alice"])
    assert listed()[1] == ["museum-a"] and listed("q=Palace")[1] == []


def test_managers_download_their_venues_poster_and_qr_code(app, client, tokens):
    from io import BytesIO

    from PIL import Image

    app.config["PUBLIC_URL"] = "https://voicemap.example.org"
    sign_in(client, tokens["alice"])
    page = client.get("/manage/venues/museum-a").get_data(as_text=True)
    for href in ("/manage/venues/museum-a/poster", "/manage/venues/museum-a/qr.svg",
                 "/manage/venues/museum-a/qr.png"):
        assert f'href="{href}"' in page
    poster = client.get("/manage/venues/museum-a/poster")
    assert poster.status_code == 200
    assert 'filename="poster-museum-a.html"' in poster.headers["Content-Disposition"]
    text = poster.get_data(as_text=True)
    assert "场馆museum-a" in text and "&lt;b&gt;Museum A&lt;/b&gt;" in text
    assert "https://voicemap.example.org/venues/museum-a" in text and "<svg" in text
    svg = client.get("/manage/venues/museum-a/qr.svg")
    assert svg.mimetype == "image/svg+xml"
    assert "https://voicemap.example.org/venues/museum-a" in svg.get_data(as_text=True)
    png = client.get("/manage/venues/museum-a/qr.png")
    assert png.mimetype == "image/png" and 'filename="qr-museum-a.png"' in png.headers[
        "Content-Disposition"]
    assert Image.open(BytesIO(png.get_data())).size[0] >= 250
    assert client.get("/manage/venues/park-b/poster").status_code == 403
    assert client.get("/manage/venues/park-b/qr.png").status_code == 403
