"""Play counts: the beacon, one upsert per play (exact under concurrency), the Asia/Shanghai
day, nothing about listeners kept, the /manage chart and CSV and who may see them."""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, date, datetime

import pytest
from helpers import feature, load
from sqlalchemy import inspect, select
from test_manage import sign_in
from test_pages import add_clip

from voicemap import auth, clips, create_app, db, plays
from voicemap.models import PlayCount
from voicemap.storage import media_store


@pytest.fixture
def venues_and_clips(app):
    load(app, [feature("museum-a", 116.34, 39.90, name_en="Museum A"),
               feature("park-b", 116.40, 39.95, "park")])
    add_clip(app, "museum-a", "c1", title="=HYPERLINK(\"x\")")
    add_clip(app, "museum-a", "c2", lang="en", title="The great hall")
    add_clip(app, "museum-a", "waiting", status="pending")
    add_clip(app, "park-b", "p1")
    with app.app_context(), db.session_scope() as s:
        _, admin = auth.create_manager(s, "Admin", admin=True)
        _, alice = auth.create_manager(s, "Alice", ["museum-a"])
        _, bob = auth.create_manager(s, "Bob", ["park-b"])
    return {"admin": admin, "alice": alice, "bob": bob}


def rows(app) -> list[tuple[str, date, str, int]]:
    with app.app_context():
        found = db.get_session().execute(
            select(PlayCount.clip_id, PlayCount.day, PlayCount.venue_id, PlayCount.count)
            .order_by(PlayCount.clip_id, PlayCount.day)).all()
        return [tuple(r) for r in found]


def test_the_beacon_counts_published_clips_only_and_keeps_nothing_about_the_listener(
        app, client, venues_and_clips):
    for _ in range(3):
        r = client.post("/api/clips/c1/played", headers={"X-Forwarded-For": "10.1.2.3",
                                                         "User-Agent": "Phone/1.0"})
        assert r.status_code == 204
        assert "Set-Cookie" not in r.headers
    assert client.post("/api/clips/c2/played").status_code == 204
    missing = client.post("/api/clips/waiting/played")
    assert missing.status_code == 404 and "waiting" in missing.get_json()["error"]
    assert client.post("/api/clips/nope/played").status_code == 404
    day = plays.today()
    assert rows(app) == [("c1", day, "museum-a", 3), ("c2", day, "museum-a", 1)]
    # The table's columns: a clip, a day, its venue and a number. No address, agent, time.
    with app.app_context():
        cols = {c["name"] for c in inspect(db.engine()).get_columns("play_counts")}
    assert cols == {"clip_id", "day", "venue_id", "count"}
    with app.app_context():
        dumped = repr(rows(app))
    assert "10.1.2.3" not in dumped and "Phone" not in dumped


def test_many_concurrent_plays_are_counted_exactly(app, venues_and_clips, database_url,
                                                   tmp_path):
    # Two apps on the same database, as two worker processes would be; 8 threads each play
    # 25 times through HTTP, all upserting the same row (from one address: the per-address
    # limit is raised for this).
    apps = [create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "x",
                        "MEDIA_DIR": str(tmp_path / "media"), "RATELIMIT_PLAY": "1000/hour"})
            for _ in range(2)]
    errors: list[object] = []
    start = threading.Barrier(8)

    def player(n: int) -> None:
        c = apps[n % 2].test_client()
        start.wait()
        for _ in range(25):
            r = c.post("/api/clips/c1/played")
            if r.status_code != 204:
                errors.append(r.get_json())

    threads = [threading.Thread(target=player, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for a in apps:
        a.extensions["voicemap.engine"].dispose()
    assert errors == []
    assert rows(app) == [("c1", plays.today(), "museum-a", 200)]


def test_one_address_cannot_inflate_a_count(database_url, tmp_path, venues_and_clips):
    limited = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "x",
                          "MEDIA_DIR": str(tmp_path / "media"), "RATELIMIT_PLAY": "3/hour"})
    try:
        c = limited.test_client()
        codes = [c.post("/api/clips/c1/played").status_code for _ in range(5)]
        assert codes == [204, 204, 204, 429, 429]
        over = c.post("/api/clips/c1/played")
        assert over.get_json()["code"] == "rate_limited"
        assert int(over.headers["Retry-After"]) > 0
        # Another clip from the same address, and the same clip from another, still count.
        assert c.post("/api/clips/c2/played").status_code == 204
        other = c.post("/api/clips/c1/played", environ_base={"REMOTE_ADDR": "10.9.8.7"})
        assert other.status_code == 204
        assert {r[0]: r[3] for r in rows(limited)} == {"c1": 4, "c2": 1}
    finally:
        limited.extensions["voicemap.engine"].dispose()


def test_the_day_is_beijing_time(app, venues_and_clips):
    # 15:59:59 UTC is 23:59:59 in Beijing; a second later it is the next day there, while
    # it is still the same day in UTC.
    before = datetime(2026, 3, 1, 15, 59, 59, tzinfo=UTC)
    after = datetime(2026, 3, 1, 16, 0, 0, tzinfo=UTC)
    assert plays.today(before) == date(2026, 3, 1)
    assert plays.today(after) == date(2026, 3, 2)
    with app.app_context():
        s = db.get_session()
        clip = clips.get_published(s, "c1")
        plays.count_play(s, clip, before)
        plays.count_play(s, clip, before)
        plays.count_play(s, clip, after)
        got = plays.for_venue(s, "museum-a", 30, now=after)
    assert rows(app) == [("c1", date(2026, 3, 1), "museum-a", 2),
                         ("c1", date(2026, 3, 2), "museum-a", 1)]
    assert got.days[-2:] == [(date(2026, 3, 1), 2), (date(2026, 3, 2), 1)]
    assert len(got.days) == 30 and got.total == 3 and got.peak == 2
    assert got.start == date(2026, 2, 1)


def count(app, clip_id: str, day: datetime, n: int) -> None:
    with app.app_context():
        s = db.get_session()
        clip = clips.get_published(s, clip_id)
        for _ in range(n):
            plays.count_play(s, clip, day)


def test_csv_for_the_venue_with_bom_and_deleted_clips_kept(app, client, venues_and_clips):
    count(app, "c1", datetime(2026, 1, 5, 2, tzinfo=UTC), 4)
    count(app, "c2", datetime(2026, 1, 5, 17, tzinfo=UTC), 2)  # 01:00 on the 6th in Beijing
    count(app, "p1", datetime(2026, 1, 5, 2, tzinfo=UTC), 7)  # another venue's
    with app.app_context():
        clips.delete(db.get_session(), media_store(), "c2", None)
    sign_in(client, venues_and_clips["alice"])
    r = client.get("/manage/venues/museum-a/plays.csv")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in r.headers["Content-Disposition"]
    body = r.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert table == [
        list(plays.CSV_COLUMNS),
        ["2026-01-05", "museum-a", "c1", "'=HYPERLINK(\"x\")", "zh", "false", "4"],
        ["2026-01-06", "museum-a", "c2", "", "", "true", "2"],
    ]


def test_who_may_see_the_counts(app, client, venues_and_clips):
    count(app, "c1", datetime.now(UTC), 5)
    assert client.get("/manage/venues/museum-a/plays.csv").status_code == 302  # sign in
    sign_in(client, venues_and_clips["bob"])
    assert client.get("/manage/venues/museum-a/plays.csv").status_code == 403
    assert client.get("/manage/venues/museum-a").status_code == 403
    assert client.get("/manage/venues/park-b/plays.csv").status_code == 200
    client.post("/manage/signout", data={"csrf": sign_in(client, venues_and_clips["bob"])})
    sign_in(client, venues_and_clips["admin"])
    r = client.get("/manage/venues/museum-a/plays.csv")
    assert r.status_code == 200 and b"c1" in r.get_data()


def test_the_manage_page_shows_a_chart_of_30_or_90_days(app, client, venues_and_clips):
    now = datetime.now(UTC)
    count(app, "c1", now, 3)
    count(app, "c2", now, 1)
    sign_in(client, venues_and_clips["alice"])
    page = client.get("/manage/venues/museum-a?lang=en").get_data(as_text=True)
    assert "<svg" in page and page.count("<rect") == 30
    assert 'data-total="4"' in page
    assert f'data-day="{plays.today().isoformat()}" data-plays="4"' in page
    assert "4 plays in the last 30 days" in page
    assert "The great hall" in page and "/manage/venues/museum-a/plays.csv" in page
    page90 = client.get("/manage/venues/museum-a?days=90&lang=zh").get_data(as_text=True)
    assert page90.count("<rect") == 90 and "最近 90 天共收听 4 次" in page90
    assert client.get("/manage/venues/museum-a?days=7").get_data(as_text=True) \
        .count("<rect") == 30  # only 30 or 90


def test_status_names_published_and_withdrawn_clips(app, client, venues_and_clips):
    r = client.get("/api/clips/status?ids=c1,waiting,nope,c2")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    body = r.get_json()
    assert body["published"] == {"c1": "a" * 64, "c2": "a" * 64}
    assert body["withdrawn"] == ["waiting", "nope"]
    too_many = client.get("/api/clips/status?ids=" + ",".join(f"x{i}" for i in range(201)))
    assert too_many.status_code == 400 and too_many.get_json()["param"] == "ids"
