"""Campaigns and children's works: submission, refusal leaves nothing, withdrawal, review,
the privacy rules path by path, location coarsening, the CLI; on both backends."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import feature, load, speech
from sqlalchemy import func, select

from voicemap import auth, create_app, db, geo
from voicemap import works as service
from voicemap.models import Work, utcnow

GUARDIAN = "Mei Wang (mother)"
CONTACT = "mei.wang@example.com"
FORM = {"kind": "writing", "title": "My hutong", "narrator_name": "Lily", "narrator_age": "9",
        "story": "Our hutong has a big tree.\nIn summer we sit under it.",
        "consent_by": GUARDIAN, "guardian_contact": CONTACT, "consent_judging": "true",
        "consent_public": "true"}


@pytest.fixture
def app(database_url, tmp_path):
    """The test app, with a submission limit that the tests below do not reach (the limit
    itself is tested with its default)."""
    app = create_app({"TESTING": True, "DATABASE_URL": database_url,
                      "MEDIA_DIR": str(tmp_path / "media"), "SECRET_KEY": "test-secret",
                      "RATELIMIT_SUBMIT": "1000/hour"})
    db.init_schema(app.extensions["voicemap.engine"])
    yield app
    app.extensions["voicemap.engine"].dispose()


def open_campaign(app, cid: str = "me-and-my-city", status: str = "open", **kw) -> None:
    now = utcnow()
    with app.app_context():
        service.create_campaign(
            db.get_session(), cid, title_zh="我和我的城市", title_en="Me and my city",
            opens=kw.pop("opens", now - timedelta(days=1)),
            closes=kw.pop("closes", now + timedelta(days=30)), status=status, **kw)


def admin_token(app) -> str:
    with app.app_context(), db.session_scope() as s:
        return auth.create_manager(s, "Admin", admin=True)[1]


def png(size=(64, 48), colour=(200, 40, 40)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def post(client, form=None, file: tuple[bytes, str] | None = None, cid="me-and-my-city",
         **over):
    data = {**(form or FORM), **over}
    data = {k: v for k, v in data.items() if v is not None}
    if file is not None:
        data["file"] = (io.BytesIO(file[0]), file[1])
    return client.post(f"/api/campaigns/{cid}/works", data=data,
                       content_type="multipart/form-data")


def media_files(app) -> list[Path]:
    root = Path(app.config["MEDIA_DIR"])
    return sorted(p for kind in ("published", "originals", "renditions")
                  for p in (root / kind).rglob("*") if p.is_file())


def count_works(app) -> int:
    with app.app_context():
        return db.get_session().execute(select(func.count()).select_from(Work)).scalar_one()


def approve(client, token, work_id, action="approve", **body):
    r = client.post(f"/api/works/{work_id}/{action}", json=body,
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


# --- campaigns -------------------------------------------------------------------------------


def test_campaigns_are_public_except_drafts(app, client):
    open_campaign(app)
    open_campaign(app, "next-year", status="draft")
    listed = client.get("/api/campaigns").get_json()["campaigns"]
    assert [c["id"] for c in listed] == ["me-and-my-city"]
    one = client.get("/api/campaigns/me-and-my-city").get_json()
    assert one["kinds"] == ["painting", "photo", "writing", "song"]
    assert one["age_groups"] == ["3-6", "7-9", "10-12", "13-17"]
    assert one["opens"].endswith("+08:00")
    assert one["accepting"] is True
    assert client.get("/api/campaigns/next-year").status_code == 404


@pytest.mark.parametrize("field,value", [
    ("id", "Not A Slug"), ("title_zh", ""), ("opens", "next tuesday"),
    ("kinds", ["painting", "sculpture"]), ("age_groups", ["3-8", "7-9"]),
    ("age_groups", ["2-5"]), ("status", "running"),
])
def test_campaign_fields_are_checked(app, field, value):
    now = utcnow()
    args = {"campaign_id": "c1", "title_zh": "题", "title_en": "T", "opens": now,
            "closes": now + timedelta(days=1), field if field != "id" else "campaign_id": value}
    with app.app_context(), pytest.raises(service.BadRequest) as info:
        service.create_campaign(db.get_session(), **args)
    assert info.value.details["param"] == field


def test_naive_times_are_beijing_time(app):
    with app.app_context():
        c = service.create_campaign(db.get_session(), "c1", title_zh="题", title_en="T",
                                    opens="2027-03-01T09:00", closes="2027-04-01")
        assert service.campaign_to_dict(c)["opens"] == "2027-03-01T09:00:00+08:00"


# --- submission --------------------------------------------------------------------------------


def test_a_writing_is_received_pending_with_a_withdrawal_code(app, client):
    open_campaign(app)
    r = post(client)
    assert r.status_code == 201
    body = r.get_json()
    assert body["status"] == "pending"
    assert len(body["withdraw_code"].replace("-", "")) == 16
    with app.app_context():
        work = db.get_session().get(Work, body["id"])
        assert work.story == FORM["story"]  # stored as sent, line break included
        assert work.age_group == "7-9"
        assert body["withdraw_code"] not in work.withdraw_hash


def test_a_closed_campaign_answers_409_and_stores_nothing(app, client):
    open_campaign(app, status="judging")
    r = post(client, file=(png(), "a.png"), kind="painting")
    assert r.status_code == 409
    assert r.get_json()["code"] == "campaign_not_open"
    assert count_works(app) == 0
    assert media_files(app) == []


def test_an_open_campaign_past_its_closing_time_answers_409(app, client):
    now = utcnow()
    open_campaign(app, opens=now - timedelta(days=9), closes=now - timedelta(days=1))
    assert post(client).status_code == 409


BAD = [
    ("kind", "sculpture"), ("consent_judging", "false"), ("consent_judging", None),
    ("consent_by", ""), ("guardian_contact", "call me"), ("guardian_contact", None),
    ("consent_public", "maybe"), ("consent_public", None), ("title", ""),
    ("narrator_name", "Lily Zhang"), ("narrator_name", "lily@example.com"),
    ("narrator_name", "13800138000"), ("narrator_name", "Zhang·Wei"),
    ("narrator_age", "2"), ("narrator_age", "18"), ("narrator_age", "nine"),
    ("district", "Gotham"), ("story", ""), ("story", "x" * 5001),
    ("story", "evil \u202e text"), ("venue_id", "no-such-venue"), ("lat", "north"),
    ("lon", "200"),
]


@pytest.mark.parametrize("field,value", BAD)
def test_each_bad_field_is_named_and_nothing_is_stored(app, client, field, value):
    open_campaign(app)
    load(app, [feature("museum-a", 116.34, 39.90)])
    extra = {"lat": "39.9"} if field == "lon" else {"lon": "116.3"} if field == "lat" else {}
    r = post(client, file=(png(), "page.png"), **{field: value, **extra})
    assert r.status_code == 400, r.get_json()
    assert r.get_json()["param"] == field
    assert count_works(app) == 0
    assert media_files(app) == []


def test_painting_photo_and_song_need_their_file(app, client):
    open_campaign(app)
    for kind in ("painting", "photo", "song"):
        r = post(client, kind=kind)
        assert r.status_code == 400
        assert r.get_json()["param"] == "file"
    assert count_works(app) == 0


def test_a_file_that_is_not_an_image_is_refused_and_leaves_nothing(app, client):
    open_campaign(app)
    r = post(client, file=(b"<html><script>alert(1)</script></html>", "cat.jpg"),
             kind="painting")
    assert r.status_code == 422
    assert r.get_json()["param"] == "file"
    assert count_works(app) == 0
    assert media_files(app) == []
    assert list((Path(app.config["MEDIA_DIR"]) / "tmp").iterdir()) == []


def test_a_campaign_refuses_kinds_it_does_not_take(app, client):
    open_campaign(app, kinds=["painting"])
    r = post(client)
    assert r.status_code == 400
    assert r.get_json()["param"] == "kind"


# --- location privacy ----------------------------------------------------------------------


def stored_point(app, work_id):
    with app.app_context():
        work = db.get_session().get(Work, work_id)
        return work.lon, work.lat


def test_a_point_is_stored_coarsened_to_the_grid(app, client):
    open_campaign(app)
    lon, lat = 116.391234, 39.907654
    wid = post(client, lon=str(lon), lat=str(lat)).get_json()["id"]
    slon, slat = stored_point(app, wid)
    assert (slon, slat) != (lon, lat)
    assert abs(slon - lon) <= service.GRID_LON / 2 + 1e-9
    assert abs(slat - lat) <= service.GRID_LAT / 2 + 1e-9
    # the cell's centre: every point of the cell gives the same stored point
    assert stored_point(app, post(client, lon="116.3899", lat="39.9095").get_json()["id"]) \
        == pytest.approx((slon, slat))
    assert geo.distance_m(lon, lat, slon, slat) < 400  # half the cell's diagonal


def test_a_gcj02_point_is_converted_before_coarsening(app, client):
    open_campaign(app)
    wgs = (116.391234, 39.907654)
    gcj = geo.wgs84_to_gcj02(*wgs)
    wid = post(client, lon=str(gcj[0]), lat=str(gcj[1]), crs="gcj02").get_json()["id"]
    assert stored_point(app, wid) == pytest.approx(service.coarsen(*wgs))
    assert stored_point(app, wid) != pytest.approx(service.coarsen(*gcj))


def test_a_work_about_a_venue_takes_the_venues_point(app, client):
    open_campaign(app)
    load(app, [feature("museum-a", 116.34, 39.90)])
    wid = post(client, venue_id="museum-a").get_json()["id"]
    assert stored_point(app, wid) == pytest.approx((116.34, 39.90))
    assert post(client, venue_id="museum-a", lat="39.9", lon="116.3").status_code == 400


# --- review and the privacy rules, path by path ---------------------------------------------


def public_paths(wid: str) -> list[str]:
    return [f"/api/works/{wid}", f"/works/{wid}", f"/media/works/{wid}/thumb",
            f"/media/works/{wid}/display", f"/works/{wid}/qr.svg"]


def listed(client, wid) -> dict[str, bool]:
    return {
        "api": wid in {w["id"] for w in client.get("/api/works").get_json()["works"]},
        "map": wid in {w[0] for w in client.get("/api/map/works").get_json()["works"]},
        "gallery": wid in client.get("/works").get_data(as_text=True),
        "venue": wid in client.get("/venues/museum-a").get_data(as_text=True),
    }


@pytest.mark.parametrize("state", ["pending", "rejected", "flagged", "private"])
def test_a_work_that_is_not_public_is_404_on_every_path(app, client, state):
    open_campaign(app)
    load(app, [feature("museum-a", 116.34, 39.90)])
    token = admin_token(app)
    wid = post(client, file=(png(), "p.png"), kind="painting", venue_id="museum-a",
               consent_public="false" if state == "private" else "true").get_json()["id"]
    if state == "rejected":
        approve(client, token, wid, "reject", reason="not a work of the campaign")
    elif state in ("flagged", "private"):
        approve(client, token, wid)
        if state == "flagged":
            approve(client, token, wid, "flag", reason="school badge visible")
    for path in public_paths(wid):
        assert client.get(path).status_code == 404, path
    assert listed(client, wid) == {"api": False, "map": False, "gallery": False,
                                   "venue": False}


def test_an_approved_public_work_is_shown_everywhere(app, client):
    open_campaign(app)
    load(app, [feature("museum-a", 116.34, 39.90)])
    token = admin_token(app)
    wid = post(client, file=(png(), "p.png"), kind="painting",
               venue_id="museum-a").get_json()["id"]
    approve(client, token, wid)
    for path in public_paths(wid):
        assert client.get(path).status_code == 200, path
    assert listed(client, wid) == {"api": True, "map": True, "gallery": True, "venue": True}
    body = client.get(f"/api/works/{wid}").get_json()
    assert body["thumb_url"] == f"/media/works/{wid}/thumb"
    assert body["audio_url"] is None
    assert "private" in client.get(body["display_url"]).headers["Cache-Control"]


def test_song_audio_is_public_only_when_the_work_is(app, client, tmp_path):
    open_campaign(app)
    token = admin_token(app)
    song = speech(tmp_path, "song.m4a").read_bytes()
    r = post(client, file=(song, "song.m4a"), kind="song")
    assert r.status_code == 201, r.get_json()
    wid = r.get_json()["id"]
    assert client.get(f"/media/works/{wid}/song.mp3").status_code == 404
    approve(client, token, wid)
    body = client.get(f"/api/works/{wid}").get_json()
    assert body["audio_url"] == f"/media/works/{wid}/song.mp3"
    audio = client.get(body["audio_url"])
    assert audio.status_code == 200
    assert audio.mimetype == "audio/mpeg"


def test_guardian_data_never_leaves_in_public(app, client):
    open_campaign(app)
    load(app, [feature("museum-a", 116.34, 39.90)])
    token = admin_token(app)
    wid = post(client, venue_id="museum-a", district="Dongcheng").get_json()["id"]
    approve(client, token, wid)
    bodies = [client.get(p).get_data(as_text=True) for p in (
        f"/api/works/{wid}", "/api/works", "/api/map/works", f"/works/{wid}", "/works",
        "/venues/museum-a", "/api/venues?f=csv", "/api/venues")]
    for body in bodies:
        assert GUARDIAN not in body
        assert CONTACT not in body
    private = client.get("/api/works/review?status=all",
                         headers={"Authorization": f"Bearer {token}"}).get_json()
    assert private["works"][0]["guardian_contact"] == CONTACT


def test_filters_and_paging(app, client):
    open_campaign(app)
    token = admin_token(app)
    for age in ("5", "8", "8"):
        approve(client, token, post(client, narrator_age=age).get_json()["id"])
    assert client.get("/api/works?age_group=7-9").get_json()["total"] == 2
    assert client.get("/api/works?kind=painting").get_json()["total"] == 0
    assert client.get("/api/works?campaign=other").get_json()["total"] == 0
    assert client.get("/api/works?kind=sculpture").get_json()["param"] == "kind"
    assert client.get("/api/works?page=x").status_code == 400
    assert client.get("/api/works?page=2").get_json()["works"] == []


def test_review_needs_an_administrator_and_a_reason_to_reject(app, client):
    open_campaign(app)
    load(app, [feature("museum-a", 116.34, 39.90)])
    with app.app_context(), db.session_scope() as s:
        manager = auth.create_manager(s, "Alice", ["museum-a"])[1]
    token = admin_token(app)
    wid = post(client).get_json()["id"]
    assert client.post(f"/api/works/{wid}/approve").status_code == 401
    assert client.post(f"/api/works/{wid}/approve",
                       headers={"Authorization": f"Bearer {manager}"}).status_code == 403
    r = client.post(f"/api/works/{wid}/reject", json={},
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400
    assert r.get_json()["param"] == "reason"


# --- withdrawal ----------------------------------------------------------------------------------


def test_withdrawal_with_the_code_erases_row_and_files(app, client):
    open_campaign(app)
    r = post(client, file=(png(), "page.png")).get_json()
    assert len(media_files(app)) == 3  # original, thumbnail, display
    bad = client.delete(f"/api/works/{r['id']}", headers={"X-Withdraw-Code": "0000-0000"})
    assert bad.status_code == 404
    ok = client.delete(f"/api/works/{r['id']}",
                       headers={"X-Withdraw-Code": r["withdraw_code"].lower()})
    assert ok.status_code == 204
    assert count_works(app) == 0
    assert media_files(app) == []


def test_an_administrator_erases_a_work(app, client):
    open_campaign(app)
    token = admin_token(app)
    wid = post(client, file=(png(), "page.png")).get_json()["id"]
    assert client.delete(f"/api/works/{wid}").status_code == 401
    r = client.delete(f"/api/works/{wid}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 204
    assert media_files(app) == []


def test_erasing_keeps_files_another_work_still_uses(app, client):
    open_campaign(app)
    token = admin_token(app)
    image = png()
    first = post(client, file=(image, "a.png")).get_json()["id"]
    post(client, file=(image, "b.png"))
    files = media_files(app)
    client.delete(f"/api/works/{first}", headers={"Authorization": f"Bearer {token}"})
    assert media_files(app) == files


def test_the_withdraw_form_erases_with_the_code(app, client):
    open_campaign(app)
    r = post(client, file=(png(), "page.png")).get_json()
    assert client.get(f"/works/withdraw?work={r['id']}").status_code == 200
    wrong = client.post("/works/withdraw", data={"work": r["id"], "code": "nope"})
    assert wrong.status_code == 404
    assert count_works(app) == 1
    done = client.post("/works/withdraw", data={"work": r["id"], "code": r["withdraw_code"]})
    assert done.status_code == 200
    assert count_works(app) == 0
    assert media_files(app) == []


# --- rate limit, fsck, backup references --------------------------------------------------------


def test_submissions_are_rate_limited_per_address(database_url, tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url,
                      "MEDIA_DIR": str(tmp_path / "media"), "SECRET_KEY": "t"})
    db.init_schema(app.extensions["voicemap.engine"])
    try:
        open_campaign(app)
        client = app.test_client()
        statuses = [post(client).status_code for _ in range(11)]
        assert statuses == [201] * 10 + [429]
        last = post(client)
        assert last.get_json()["code"] == "rate_limited"
        assert int(last.headers["Retry-After"]) > 0
        assert count_works(app) == 10
    finally:
        app.extensions["voicemap.engine"].dispose()


def test_fsck_knows_the_files_of_works(app, client, runner):
    open_campaign(app)
    post(client, file=(png(), "page.png"))
    assert "media and database agree" in runner.invoke("fsck").output
    rendition = next(p for p in media_files(app) if "renditions" in p.parts)
    rendition.unlink()
    out = runner.invoke("fsck")
    assert out.exit_code == 1
    assert "work " in out.output


def test_backups_name_the_files_of_works():
    from voicemap import backup

    assert ("works", "display_sha256") in backup.MEDIA_REFERENCES["renditions"]
    assert ("works", "original_sha256") in backup.MEDIA_REFERENCES["originals"]


# --- command line -----------------------------------------------------------------------------


def test_campaign_and_review_commands(app, client, runner):
    r = runner.invoke("campaign", "create", "spring", "--title-zh", "春天", "--title-en",
                      "Spring", "--opens", "2020-01-01T00:00", "--closes", "2099-01-01",
                      "--kinds", "writing", "--kinds", "painting")
    assert r.exit_code == 0, r.output
    assert runner.invoke("campaign", "set-status", "spring", "open").exit_code == 0
    listing = runner.invoke("campaign", "list").output
    assert "spring" in listing
    assert "open" in listing
    bad = runner.invoke("campaign", "set-status", "spring", "running")
    assert bad.exit_code == 1
    wid = post(client, cid="spring").get_json()["id"]
    assert wid in runner.invoke("works", "review", "list").output
    assert runner.invoke("works", "review", "reject", wid).exit_code != 0
    assert runner.invoke("works", "review", "approve", wid).exit_code == 0
    assert client.get(f"/api/works/{wid}").status_code == 200
    assert runner.invoke("works", "review", "flag", wid).exit_code == 0
    assert client.get(f"/api/works/{wid}").status_code == 404


def test_demo_works_are_labelled_and_idempotent(app, client, runner):
    assert runner.invoke("demo-works").exit_code == 0
    first = client.get("/api/works?campaign=me-and-my-city").get_json()
    assert first["total"] >= 3
    assert all(w["synthetic"] for w in first["works"])
    assert runner.invoke("demo-works").exit_code == 0
    assert client.get("/api/works").get_json()["total"] == first["total"]
    assert json.loads(client.get("/api/campaigns/me-and-my-city").data)["status"] == "open"


def test_served_images_carry_no_exif_or_gps_and_are_rotated(app, client):
    from PIL import Image

    open_campaign(app)
    token = admin_token(app)
    img = Image.new("RGB", (300, 200), (20, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 29.0)}  # GPS
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    assert b"Exif" in out.getvalue()
    wid = post(client, file=(out.getvalue(), "IMG_0001.JPG"), kind="photo").get_json()["id"]
    approve(client, token, wid)
    for which in ("thumb", "display"):
        served = client.get(f"/media/works/{wid}/{which}")
        assert served.mimetype == "image/jpeg"
        assert b"Exif" not in served.data
        assert b"GPS" not in served.data
        shown = Image.open(io.BytesIO(served.data))
        assert shown.height > shown.width  # the orientation was applied


def test_a_work_lives_in_the_object_store_and_is_erased_there(database_url, tmp_path,
                                                             bucket, seaweed):
    from test_s3 import objects

    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "t",
                      "MEDIA_URL": bucket, "S3_ENDPOINT_URL": seaweed,
                      "MEDIA_SCRATCH_DIR": str(tmp_path / "scratch")})
    db.init_schema(app.extensions["voicemap.engine"])
    try:
        open_campaign(app)
        token = admin_token(app)
        client = app.test_client()
        r = post(client, file=(png(), "p.png"), kind="painting")
        assert r.status_code == 201, r.get_json()
        wid = r.get_json()["id"]
        stored = objects(bucket, seaweed)
        assert sum("/renditions/" in k for k in stored) == 2
        assert sum("/originals/" in k for k in stored) == 1
        approve(client, token, wid)
        display = client.get(f"/media/works/{wid}/display")
        assert display.status_code == 200
        assert display.data[:3] == b"\xff\xd8\xff"  # JPEG
        client.delete(f"/api/works/{wid}", headers={"Authorization": f"Bearer {token}"})
        assert objects(bucket, seaweed) == []
    finally:
        app.extensions["voicemap.engine"].dispose()
