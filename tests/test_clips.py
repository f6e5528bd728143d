"""Attaching, reviewing, streaming and deleting clips on both backends; every refusal stores
nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import feature, load, mp3_tags, speech, starts_with_mpeg_frame
from sqlalchemy import func, select

from voicemap import auth, db
from voicemap.models import Clip


@pytest.fixture
def setup(app, tmp_path):
    load(app, [feature("museum-a", 116.34, 39.90), feature("park-b", 116.40, 39.95, "park")])
    with app.app_context(), db.session_scope() as s:
        _, admin = auth.create_manager(s, "Admin", admin=True)
        _, alice = auth.create_manager(s, "Alice", ["museum-a"])
        _, bob = auth.create_manager(s, "Bob", ["park-b"])
    return {"admin": admin, "alice": alice, "bob": bob, "audio": tmp_path / "audio"}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


FORM = {"lang": "en", "narrator_name": "Lily", "narrator_age": "9",
        "transcript": "Welcome to the museum.", "consent": "true",
        "consent_by": "Mei Wang (mother)"}


def upload(client, token, path: Path, venue="museum-a", **form):
    data = {**FORM, **form}
    data = {k: v for k, v in data.items() if v is not None}
    with open(path, "rb") as fh:
        data["file"] = (fh, path.name)
        return client.post(f"/api/venues/{venue}/clips", data=data, headers=bearer(token),
                           content_type="multipart/form-data")


def media_files(app) -> list[Path]:
    """Stored media (published MP3s, archived originals) and staged uploads; lock files and
    empty directories do not count."""
    root = Path(app.config["MEDIA_DIR"])
    return sorted(p for kind in ("published", "originals", "tmp")
                  for p in (root / kind).rglob("*") if p.is_file())


def clip_rows(app) -> int:
    with app.app_context():
        return db.get_session().execute(select(func.count()).select_from(Clip)).scalar_one()


def test_attach_review_stream_delete(app, client, setup):
    src = speech(setup["audio"], "guide.m4a")
    r = upload(client, setup["alice"], src)
    assert r.status_code == 201, r.get_json()
    clip = r.get_json()
    assert clip["status"] == "pending"
    assert clip["audio_url"] == f"/audio/{clip['id']}.mp3"
    assert 2000 < clip["duration_ms"] < 8000
    assert clip["loudness_lufs"] == pytest.approx(-16, abs=1)
    assert len(media_files(app)) == 2  # the published MP3 and the archived original

    # Pending: hidden from the public, shown to the uploader and administrators.
    assert client.get("/api/venues/museum-a/clips").get_json()["clips"] == []
    assert client.get(clip["audio_url"]).status_code == 404
    mine = client.get("/api/venues/museum-a/clips", headers=bearer(setup["alice"])).get_json()
    assert [c["id"] for c in mine["clips"]] == [clip["id"]]
    assert client.get("/api/venues/museum-a/clips",
                      headers=bearer(setup["bob"])).get_json()["clips"] == []
    queue = client.get("/api/review", headers=bearer(setup["admin"])).get_json()["clips"]
    assert [c["id"] for c in queue] == [clip["id"]]

    # Only administrators publish.
    assert client.post(f"/api/clips/{clip['id']}/publish",
                       headers=bearer(setup["alice"])).status_code == 403
    r = client.post(f"/api/clips/{clip['id']}/publish", headers=bearer(setup["admin"]))
    assert r.status_code == 200
    assert r.get_json()["status"] == "published"
    public = client.get("/api/venues/museum-a/clips").get_json()["clips"]
    assert [c["id"] for c in public] == [clip["id"]]
    assert "consent_by" not in public[0]  # the guardian's name is not public
    assert client.get("/api/venues/museum-a").get_json(force=True)["properties"][
        "clip_count"] == 1

    audio = client.get(clip["audio_url"])
    assert audio.status_code == 200
    assert audio.mimetype == "audio/mpeg"
    assert mp3_tags(audio.data) == []  # no ID3v2, ID3v1, APE or Lyrics3 tag
    assert starts_with_mpeg_frame(audio.data)  # LAME's Info frame, then the audio
    assert "private" in audio.headers["Cache-Control"]
    assert audio.headers["ETag"]
    again = client.get(clip["audio_url"], headers={"If-None-Match": audio.headers["ETag"]})
    assert again.status_code == 304

    # Consent withdrawn: Bob may not, Alice may; then nothing is left anywhere.
    assert client.delete(f"/api/clips/{clip['id']}",
                         headers=bearer(setup["bob"])).status_code == 403
    assert client.delete(f"/api/clips/{clip['id']}",
                         headers=bearer(setup["alice"])).status_code == 204
    assert client.get(clip["audio_url"]).status_code == 404
    assert media_files(app) == []
    assert clip_rows(app) == 0


def test_range_requests_return_the_right_bytes(app, client, setup):
    clip = upload(client, setup["admin"], speech(setup["audio"], "g.wav")).get_json()
    client.post(f"/api/clips/{clip['id']}/publish", headers=bearer(setup["admin"]))
    whole = client.get(clip["audio_url"]).data
    part = client.get(clip["audio_url"], headers={"Range": "bytes=100-299"})
    assert part.status_code == 206
    assert part.data == whole[100:300]
    assert part.headers["Content-Range"] == f"bytes 100-299/{len(whole)}"
    tail = client.get(clip["audio_url"], headers={"Range": "bytes=-50"})
    assert tail.status_code == 206
    assert tail.data == whole[-50:]
    beyond = client.get(clip["audio_url"], headers={"Range": f"bytes={len(whole) + 10}-"})
    assert beyond.status_code == 416


def test_published_file_has_no_identifying_tags(app, client, setup):
    src = speech(setup["audio"], "tagged.mp3", ffmpeg_args=(
        "-metadata", "title=Lily Wang reads", "-metadata", "artist=Lily Wang",
        "-metadata", "comment=Beijing No.2 Primary School, tel 13800000000",
        "-metadata", "location=+39.9042+116.4074/"))
    clip = upload(client, setup["admin"], src).get_json()
    with app.app_context():
        row = db.get_session().get(Clip, clip["id"])
        from voicemap.storage import media_store
        path = media_store().path("published", row.audio_sha256)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "quiet", "-print_format", "json", "-show_format", "-show_streams",
         str(path)], capture_output=True, check=True).stdout)
    tags = {**probe["format"].get("tags", {}), **probe["streams"][0].get("tags", {})}
    text = json.dumps(tags)
    assert "Lily" not in text
    assert "School" not in text
    assert "39.9" not in text
    assert path.read_bytes().find(b"Lily") == -1
    assert mp3_tags(path.read_bytes()) == []


@pytest.mark.parametrize("form,param", [
    ({"consent": None}, "consent"),
    ({"consent": "false"}, "consent"),
    ({"consent_by": ""}, "consent"),
    ({"narrator_name": "Lily Wang"}, "narrator_name"),
    ({"narrator_name": "lily@example.com"}, "narrator_name"),
    ({"narrator_name": "13800000000"}, "narrator_name"),
    ({"narrator_name": "Lily.Smith"}, "narrator_name"),
    ({"narrator_name": "Zhang·Wei"}, "narrator_name"),
    ({"narrator_name": "Mary-Jane.Watson-Parker"}, "narrator_name"),
    ({"title": "Lily\u202egnp.exe"}, "title"),
    ({"transcript": "Hello \u2066world\u2069"}, "transcript"),
    ({"narrator_age": "2"}, "narrator_age"),
    ({"narrator_age": "eighteen"}, "narrator_age"),
    ({"transcript": " "}, "transcript"),
    ({"lang": "English"}, "lang"),
])
def test_bad_fields_are_refused_and_nothing_stored(app, client, setup, form, param):
    r = upload(client, setup["alice"], speech(setup["audio"], "g.wav"), **form)
    assert r.status_code == 400
    assert r.get_json()["param"] == param
    assert media_files(app) == []
    assert clip_rows(app) == 0


def _files_outside_tmp(app):
    return [p for p in media_files(app) if "tmp" not in p.relative_to(
        app.config["MEDIA_DIR"]).parts]


@pytest.mark.parametrize("make,code,status", [
    (lambda d: _write(d / "notes.mp3", b"Dear parents, the trip is on Friday.\n" * 50),
     "not_audio", 422),
    (lambda d: _write(d / "page.m4a", b"<!doctype html><html><body>hi</body></html>" * 20),
     "not_audio", 422),
    (lambda d: _truncate(speech(d, "t.m4a"), 0.3), "undecodable", 422),
    (lambda d: speech(d, "short.wav", ffmpeg_args=("-t", "0.5")), "too_short", 422),
    (lambda d: _silence(d / "silent.wav"), "silent", 422),
])
def test_bad_audio_is_refused_and_nothing_stored(app, client, setup, make, code, status):
    r = upload(client, setup["alice"], make(setup["audio"]))
    assert r.status_code == status, r.get_json()
    assert r.get_json()["code"] == code
    assert r.get_json()["error"]
    assert _files_outside_tmp(app) == []
    assert clip_rows(app) == 0
    assert [p for p in media_files(app)] == []  # staging files are gone too


def test_too_large_upload_is_refused(app, client, setup):
    app.config["MAX_UPLOAD_BYTES"] = 20_000
    r = upload(client, setup["alice"], speech(setup["audio"], "big.wav"))
    assert r.status_code == 413
    assert r.get_json()["code"] == "too_large"
    assert media_files(app) == []
    assert clip_rows(app) == 0


@pytest.mark.parametrize("who,venue,status", [
    (None, "museum-a", 401), ("wrong", "museum-a", 401), ("bob", "museum-a", 403),
    ("alice", "no-such-venue", 404),
])
def test_upload_authorisation(app, client, setup, who, venue, status):
    token = setup.get(who, "vm_not-a-real-token") if who else None
    headers = bearer(token) if token else {}
    src = speech(setup["audio"], "g.wav")
    with open(src, "rb") as fh:
        r = client.post(f"/api/venues/{venue}/clips", data={**FORM, "file": (fh, "g.wav")},
                        headers=headers, content_type="multipart/form-data")
    assert r.status_code == status
    assert r.get_json()["error"]
    assert media_files(app) == []
    assert clip_rows(app) == 0


def test_missing_file_field(client, setup):
    r = client.post("/api/venues/museum-a/clips", data=FORM, headers=bearer(setup["alice"]),
                    content_type="multipart/form-data")
    assert r.status_code == 400
    assert r.get_json()["param"] == "file"


def test_reject_needs_a_reason_and_hides_the_clip(app, client, setup):
    clip = upload(client, setup["alice"], speech(setup["audio"], "g.wav")).get_json()
    r = client.post(f"/api/clips/{clip['id']}/reject", headers=bearer(setup["admin"]), json={})
    assert r.status_code == 400
    assert r.get_json()["param"] == "reason"
    r = client.post(f"/api/clips/{clip['id']}/reject", headers=bearer(setup["admin"]),
                    json={"reason": "background noise"})
    assert r.status_code == 200
    assert r.get_json()["status"] == "rejected"
    assert client.get(clip["audio_url"]).status_code == 404
    mine = client.get(f"/api/clips/{clip['id']}", headers=bearer(setup["alice"])).get_json()
    assert mine["reject_reason"] == "background noise"
    assert client.get(f"/api/clips/{clip['id']}").status_code == 404


def test_same_bytes_are_stored_once_and_kept_while_shared(app, client, setup):
    src = speech(setup["audio"], "g.ogg")
    first = upload(client, setup["admin"], src).get_json()
    second = upload(client, setup["admin"], src, venue="park-b").get_json()
    assert len(_files_outside_tmp(app)) == 2
    client.delete(f"/api/clips/{first['id']}", headers=bearer(setup["admin"]))
    assert len(_files_outside_tmp(app)) == 2  # still needed by the second clip
    client.delete(f"/api/clips/{second['id']}", headers=bearer(setup["admin"]))
    assert _files_outside_tmp(app) == []


def test_failure_after_files_are_written_leaves_nothing(app, client, setup, monkeypatch):
    from sqlalchemy.orm import Session

    def fail(self):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Session, "commit", fail)
    r = upload(client, setup["alice"], speech(setup["audio"], "g.wav"))
    monkeypatch.undo()
    assert r.status_code == 500
    assert r.get_json() == {"error": "internal server error", "code": "internal",
                            "request_id": r.headers["X-Request-Id"]}
    assert _files_outside_tmp(app) == []
    assert clip_rows(app) == 0


def test_cli_manager_clip_review_and_fsck(app, runner, setup, tmp_path):
    made = runner.invoke("create-manager", "Carol", "--venue", "park-b")
    assert made.exit_code == 0
    token = made.output.strip().splitlines()[-1]
    assert token.startswith("vm_")
    assert " " not in token
    with app.app_context():
        assert auth.authenticate(db.get_session(), token).name == "Carol"
    assert runner.invoke("create-manager", "Dan", "--venue", "nope").exit_code == 1

    src = speech(setup["audio"], "g.flac")
    added = runner.invoke("add-clip", "park-b", str(src), "--lang", "en", "--narrator", "Tom",
                          "--age", "8", "--transcript", "Hello", "--consent-by", "His father")
    assert added.exit_code == 0, added.output
    clip_id = added.output.split()[1].rstrip(":")
    listed = runner.invoke("review", "list")
    assert clip_id in listed.output
    assert "pending" in listed.output
    assert runner.invoke("review", "publish", clip_id).exit_code == 0
    assert runner.invoke("fsck").output.strip() == "media and database agree"

    # An orphan file and a clip whose file vanished: reported, then repaired.
    orphan = Path(app.config["MEDIA_DIR"]) / "published" / "ab" / ("ab" + "0" * 62 + ".mp3")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"x")
    with app.app_context():
        row = db.get_session().get(Clip, clip_id)
        from voicemap.storage import media_store
        media_store().path("originals", row.original_sha256).unlink()
    check = runner.invoke("fsck")
    assert check.exit_code == 1
    assert "orphan file" in check.output
    assert "missing" in check.output
    assert runner.invoke("fsck", "--repair").exit_code == 0
    assert runner.invoke("fsck").output.strip() == "media and database agree"
    assert clip_rows(app) == 0
    assert _files_outside_tmp(app) == []

    bad = runner.invoke("add-clip", "park-b", str(src), "--lang", "en", "--narrator", "Tom Li",
                        "--age", "8", "--transcript", "Hello", "--consent-by", "His father")
    assert bad.exit_code == 1
    assert "first name" in bad.output
    assert runner.invoke("delete-clip", "nope").exit_code == 1


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _silence(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "anullsrc=r=44100:cl=mono", "-t", "4", str(path)], check=True)
    return path


def test_demo_clips_are_labelled_synthetic_and_added_once(app, runner):
    load(app, [feature("zoo", 116.338, 39.941, "science_site",
                       description_zh="动物园里有大熊猫。", description_en="The zoo has pandas."),
               feature("plain", 116.3, 39.9, "park")])  # no description: no demo clip
    first = runner.invoke("demo-clips")
    assert first.exit_code == 0
    assert "2 synthetic demo clip(s) added" in first.output
    assert "0 synthetic" in runner.invoke("demo-clips").output
    with app.app_context():
        rows = db.get_session().execute(select(Clip).order_by(Clip.lang)).scalars().all()
    assert [(c.venue_id, c.lang, c.status, c.synthetic) for c in rows] == [
        ("zoo", "en", "published", True), ("zoo", "zh", "published", True)]
    assert rows[0].transcript.startswith("[Synthetic placeholder, not a child's voice]")
    assert rows[1].transcript.startswith("【合成语音示例，并非儿童录音】")
    assert rows[0].narrator_age is None
    assert rows[0].duration_ms > 1000


def test_pending_clip_of_another_venue_is_404_to_its_managers(app, client, setup):
    clip = upload(client, setup["alice"], speech(setup["audio"], "g.wav")).get_json()
    bob = bearer(setup["bob"])  # manages another venue
    assert client.delete(f"/api/clips/{clip['id']}", headers=bob).status_code == 404
    assert client.get(f"/api/clips/{clip['id']}", headers=bob).status_code == 404
    assert clip_rows(app) == 1


def test_a_co_manager_can_withdraw_a_pending_clip_another_manager_uploaded(app, client,
                                                                             setup):
    """A guardian's withdrawal must not wait for the one manager who uploaded the clip."""
    with app.app_context(), db.session_scope() as s:
        _, carol = auth.create_manager(s, "Carol", ["museum-a"])  # also manages museum-a
    clip = upload(client, setup["alice"], speech(setup["audio"], "g.wav")).get_json()
    listed = client.get("/api/venues/museum-a/clips", headers=bearer(carol)).get_json()
    assert [c["id"] for c in listed["clips"]] == [clip["id"]]
    assert "consent_by" not in listed["clips"][0]  # the consent record stays the uploader's
    assert client.delete(f"/api/clips/{clip['id']}", headers=bearer(carol)).status_code == 204
    assert clip_rows(app) == 0
    assert _files_outside_tmp(app) == []


@pytest.mark.parametrize("body", [[1], "text", {"reason": 5}, {"reason": ["x"]},
                                  {"reason": "x" * 1001}])
def test_reject_with_odd_bodies_is_400(client, setup, body):
    clip = upload(client, setup["alice"], speech(setup["audio"], "g.wav")).get_json()
    r = client.post(f"/api/clips/{clip['id']}/reject", headers=bearer(setup["admin"]), json=body)
    assert r.status_code == 400
    assert r.get_json()["param"] == "reason"


@pytest.mark.parametrize("name", ["Mary-Jane", "O'Neil", "小雨", "Zoë"])
def test_first_names_with_a_hyphen_or_apostrophe_are_accepted(name):
    from voicemap import clips

    fields = clips.check_fields({**FORM, "narrator_name": name, "consent": "true",
                                 "consent_by": "Parent"})
    assert fields.narrator_name == name


@pytest.mark.parametrize("field", ["transcript", "consent_by", "narrator_name", "title"])
def test_control_characters_in_fields_are_refused(app, client, setup, field):
    r = upload(client, setup["alice"], speech(setup["audio"], "g.wav"),
               **{field: "Lily\x00 drop"})
    assert r.status_code == 400
    assert r.get_json()["param"] == field
    assert media_files(app) == []
    assert clip_rows(app) == 0


def test_malformed_upload_body_says_so(client, setup):
    r = client.post("/api/venues/museum-a/clips", data=b"--x\r\nnot really multipart",
                    headers={**bearer(setup["alice"]),
                             "Content-Type": "multipart/form-data; boundary=zzz"})
    assert r.status_code == 400
    assert "multipart" in r.get_json()["error"]


@pytest.mark.parametrize("path", ["/api/venues/%00", "/api/clips/%00", "/audio/%00.mp3",
                                  "/api/venues/%00/clips"])
def test_nul_in_ids_is_a_4xx_not_a_500(client, path):
    assert client.get(path).status_code in (400, 404)


def test_deletion_waits_for_an_upload_of_the_same_bytes(app, client, setup):
    """An upload holds the file's lock from storing it to committing its row, so a deletion
    of another clip with the same bytes, running meanwhile, keeps the file."""
    import threading

    from voicemap import clips
    from voicemap.storage import media_store

    first = upload(client, setup["admin"], speech(setup["audio"], "g.wav")).get_json()
    with app.app_context():
        row = db.get_session().get(Clip, first["id"])
        values = {c.name: getattr(row, c.name) for c in Clip.__table__.columns}
        db.get_session().rollback()  # no read transaction held across the other thread
        shas = (values["audio_sha256"], values["original_sha256"])
        store = media_store()
        done = threading.Event()

        def delete_first():
            with app.app_context():
                clips.delete(db.get_session(), store, first["id"], None)
            done.set()

        with store.locked(*shas):  # as attach() does for a second upload of these bytes
            worker = threading.Thread(target=delete_first)
            worker.start()
            assert not done.wait(0.5)  # the row is gone but the files wait for the lock
            s = db.get_session()
            twin = Clip(**{**values, "id": "twin"})
            s.add(twin)
            s.commit()
        worker.join(10)
        assert done.is_set()
        assert store.exists("published", shas[0])
        assert store.exists("originals", shas[1])


# --- editing and replacing ---------------------------------------------------------------------


def test_patch_changes_title_and_transcript_only(app, client, setup):
    clip = upload(client, setup["alice"], speech(setup["audio"], "g.wav"), title="Old").get_json()
    url = f"/api/clips/{clip['id']}"
    r = client.patch(url, json={"title": "Bells", "transcript": "Hello bells"},
                     headers=bearer(setup["alice"]))
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["title"], r.get_json()["transcript"]) == ("Bells", "Hello bells")
    r = client.patch(url, json={"title": None}, headers=bearer(setup["alice"]))
    assert r.get_json()["title"] is None and r.get_json()["transcript"] == "Hello bells"
    for body, param in (({"transcript": ""}, "transcript"), ({"narrator_name": "Bo"},
                                                             "narrator_name"),
                        ({"status": "published"}, "status"), ({"title": "x" * 201}, "title"),
                        ({"title": "a\u202eb"}, "title")):
        r = client.patch(url, json=body, headers=bearer(setup["alice"]))
        assert r.status_code == 400, body
        assert r.get_json()["param"] == param
    assert client.patch(url, json=[1], headers=bearer(setup["alice"])).status_code == 400
    assert client.patch(url, json={"title": "x"}).status_code == 401
    # Bob manages another venue: the pending clip does not exist for him.
    assert client.patch(url, json={"title": "x"}, headers=bearer(setup["bob"])).status_code \
        == 404
    client.post(f"{url}/reject", json={"reason": "too quiet"}, headers=bearer(setup["admin"]))
    r = client.patch(url, json={"transcript": "Hello again"}, headers=bearer(setup["alice"]))
    assert (r.get_json()["status"], r.get_json()["reject_reason"]) == ("pending", None)
    client.post(f"{url}/publish", headers=bearer(setup["admin"]))
    r = client.patch(url, json={"title": "Published"}, headers=bearer(setup["alice"]))
    assert r.get_json()["status"] == "published"
    assert client.get(url).get_json()["title"] == "Published"


def test_replacing_audio_goes_back_to_review_and_keeps_no_old_files(app, client, setup):
    clip = upload(client, setup["alice"], speech(setup["audio"], "g.wav")).get_json()
    url = f"/api/clips/{clip['id']}"
    client.post(f"{url}/publish", headers=bearer(setup["admin"]))
    old = set(_files_outside_tmp(app))
    old_mp3 = client.get(clip["audio_url"]).get_data()

    def put(token, path, name=None):
        with open(path, "rb") as fh:
            return client.put(f"{url}/audio", data={"file": (fh, name or path.name)},
                              headers=bearer(token), content_type="multipart/form-data")

    # Refusals change nothing: not audio, nobody, another venue's manager, no file.
    junk = _write(setup["audio"] / "junk.mp3", b"not audio" * 100)
    r = put(setup["alice"], junk)
    assert r.status_code == 422 and r.get_json()["code"] == "not_audio"
    with open(junk, "rb") as fh:
        assert client.put(f"{url}/audio", data={"file": (fh, "j.mp3")},
                          content_type="multipart/form-data").status_code == 401
    assert put(setup["bob"], junk).status_code == 403
    assert client.put(f"{url}/audio", data={}, headers=bearer(setup["alice"]),
                      content_type="multipart/form-data").get_json()["param"] == "file"
    assert set(_files_outside_tmp(app)) == old
    assert client.get(clip["audio_url"]).get_data() == old_mp3

    r = put(setup["alice"], speech(setup["audio"], "new.m4a", "zh"))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["id"], body["status"], body["reviewed_at"]) == (clip["id"], "pending", None)
    assert body["duration_ms"] != clip["duration_ms"]
    assert client.get(clip["audio_url"]).status_code == 404  # not public until reviewed
    new = set(_files_outside_tmp(app))
    assert len(new) == 2 and not new & old  # the old MP3 and original are gone
    client.post(f"{url}/publish", headers=bearer(setup["admin"]))
    assert client.get(clip["audio_url"]).get_data() != old_mp3
    with app.app_context():
        from voicemap import clips
        from voicemap.storage import media_store
        assert clips.fsck(db.get_session(), media_store()).clean


def test_replacing_with_bytes_another_clip_shares_keeps_them(app, client, setup):
    src = speech(setup["audio"], "g.ogg")
    shared = upload(client, setup["admin"], src, venue="park-b").get_json()
    mine = upload(client, setup["admin"], src).get_json()
    assert len(_files_outside_tmp(app)) == 2
    with open(speech(setup["audio"], "other.wav", "zh"), "rb") as fh:
        r = client.put(f"/api/clips/{mine['id']}/audio", data={"file": (fh, "other.wav")},
                       headers=bearer(setup["admin"]), content_type="multipart/form-data")
    assert r.status_code == 200
    assert len(_files_outside_tmp(app)) == 4  # the shared files stay for the other clip
    client.delete(f"/api/clips/{shared['id']}", headers=bearer(setup["admin"]))
    assert len(_files_outside_tmp(app)) == 2
