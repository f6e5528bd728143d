"""Activities on both backends: recurrence, cancellation, filters, feeds, who may change what,
and refusals that save nothing."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
from helpers import feature, load
from icalendar import Calendar
from sqlalchemy import func, select

from voicemap import activities, auth, db
from voicemap.models import Activity, CancelledOccurrence


@pytest.fixture
def setup(app):
    load(app, [feature("museum-a", 116.34, 39.90),
               feature("park-b", 116.40, 39.95, "park", name_en="Park B")])
    with app.app_context(), db.session_scope() as s:
        _, admin = auth.create_manager(s, "Admin", admin=True)
        _, alice = auth.create_manager(s, "Alice", ["museum-a"])
        _, bob = auth.create_manager(s, "Bob", ["park-b"])
    return {"admin": admin, "alice": alice, "bob": bob}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# Saturdays 16, 23 and 30 January and 6 February 2027, 10:00-11:30 Beijing time.
STORY_HOUR = {"title_zh": "周六故事会", "title_en": "Saturday story hour",
              "description_zh": "给小朋友讲绘本。", "description_en": "Picture books read aloud.",
              "start": "2027-01-16T10:00:00+08:00", "end": "2027-01-16T11:30:00+08:00",
              "rrule": "FREQ=WEEKLY;COUNT=4", "min_age": 3, "max_age": 8, "price": 0,
              "booking_url": "https://example.org/book", "accessibility": "Step-free entrance"}


def create(client, token, venue="museum-a", **changes):
    body = {**STORY_HOUR, **changes}
    return client.post(f"/api/venues/{venue}/activities", json=body, headers=bearer(token))


def rows(app, model=Activity) -> int:
    with app.app_context():
        return db.get_session().execute(select(func.count()).select_from(model)).scalar_one()


def test_create_answers_201_with_the_activity(client, setup):
    resp = create(client, setup["alice"])
    assert resp.status_code == 201
    body = resp.get_json()
    assert isinstance(body["id"], int)
    assert body["start"] == "2027-01-16T10:00:00+08:00"
    assert body["end"] == "2027-01-16T11:30:00+08:00"
    assert body["rrule"] == "FREQ=WEEKLY;COUNT=4"
    assert body["free"] is True
    assert body["venue_id"] == "museum-a"


def test_weekly_series_crosses_the_month_with_a_cancelled_occurrence(client, setup):
    aid = create(client, setup["alice"]).get_json()["id"]
    resp = client.delete(f"/api/activities/{aid}?occurrence=2027-01-30T10:00:00%2B08:00",
                         headers=bearer(setup["alice"]))
    assert resp.status_code == 200
    assert resp.get_json()["cancelled_occurrences"] == ["2027-01-30T10:00:00+08:00"]
    fc = client.get("/api/activities?from=2027-01-25&to=2027-02-10").get_json()
    assert fc["type"] == "FeatureCollection"
    got = [(f["properties"]["start"], f["properties"]["end"], f["properties"]["status"])
           for f in fc["features"]]
    assert got == [("2027-01-30T10:00:00+08:00", "2027-01-30T11:30:00+08:00", "cancelled"),
                   ("2027-02-06T10:00:00+08:00", "2027-02-06T11:30:00+08:00", "scheduled")]
    assert fc["features"][0]["geometry"] == {"type": "Point", "coordinates": [116.34, 39.9]}


def test_the_whole_month_has_every_saturday_in_order(client, setup):
    create(client, setup["alice"])
    create(client, setup["bob"], venue="park-b", rrule=None, title_en="Walk",
           start="2027-01-20T09:00:00+08:00", end="2027-01-20T10:00:00+08:00")
    fc = client.get("/api/activities?from=2027-01-01&to=2027-01-31").get_json()
    starts = [f["properties"]["start"][:10] for f in fc["features"]]
    assert starts == ["2027-01-16", "2027-01-20", "2027-01-23", "2027-01-30"]


def test_until_ends_the_series(client, setup):
    create(client, setup["alice"], rrule="FREQ=WEEKLY;UNTIL=20270124")
    fc = client.get("/api/activities?from=2027-01-01&to=2027-03-01").get_json()
    assert [f["properties"]["start"][:10] for f in fc["features"]] == ["2027-01-16",
                                                                       "2027-01-23"]


def test_cancelling_the_activity_keeps_it_listed_as_cancelled(client, setup):
    aid = create(client, setup["alice"]).get_json()["id"]
    assert client.delete(f"/api/activities/{aid}",
                         headers=bearer(setup["alice"])).get_json()["status"] == "cancelled"
    fc = client.get("/api/activities?from=2027-01-01&to=2027-02-28").get_json()
    assert len(fc["features"]) == 4
    assert {f["properties"]["status"] for f in fc["features"]} == {"cancelled"}


@pytest.mark.parametrize("query, expected", [
    ("age=2", 1), ("age=5", 2), ("age=10", 1), ("free=1", 1), ("category=park", 1),
    ("bbox=116.3,39.85,116.37,39.92", 1), ("bbox=116.0,39.0,116.1,39.1", 0)])
def test_filters(client, setup, query, expected):
    create(client, setup["alice"], rrule=None)
    create(client, setup["bob"], venue="park-b", rrule=None, min_age=None, max_age=None,
           price=20)
    fc = client.get(f"/api/activities?from=2027-01-16&to=2027-01-16&{query}").get_json()
    assert len(fc["features"]) == expected


@pytest.mark.parametrize("query, param", [
    ("from=tomorrow", "from"), ("from=2027-01-10&to=2027-01-01", "to"),
    ("from=2027-01-01&to=2029-01-01", "to"), ("age=18", "age"), ("free=yes", "free"),
    ("bbox=1,2,3", "bbox"), ("category=zoo", "category"),
    ("from=2027-01-01T10:00:00", "from")])
def test_bad_filters_are_400_naming_the_parameter(client, setup, query, param):
    resp = client.get(f"/api/activities?{query}")
    assert resp.status_code == 400
    assert resp.get_json()["param"] == param


@pytest.mark.parametrize("changes, param", [
    ({"end": "2027-01-16T09:00:00+08:00"}, "end"),
    ({"end": "2027-01-16T10:00:00+08:00"}, "end"),
    ({"booking_url": "http://example.org/book"}, "booking_url"),
    ({"booking_url": "javascript:alert(1)"}, "booking_url"),
    ({"max_age": 18}, "max_age"),
    ({"min_age": -1}, "min_age"),
    ({"min_age": 9, "max_age": 4}, "max_age"),
    ({"price": -5}, "price"),
    ({"price": "free"}, "price"),
    ({"title_zh": ""}, "title_zh"),
    ({"start": "2027-01-16T10:00:00"}, "start"),
    ({"start": "soon"}, "start"),
    ({"rrule": "FREQ=DAILY;COUNT=3"}, "rrule"),
    ({"rrule": "FREQ=WEEKLY"}, "rrule"),
    ({"rrule": "FREQ=WEEKLY;COUNT=3;UNTIL=20270301T000000Z"}, "rrule"),
    ({"rrule": "FREQ=WEEKLY;COUNT=500"}, "rrule"),
    ({"rrule": "FREQ=WEEKLY;BYDAY=SU;COUNT=3"}, "rrule"),
    ({"rrule": "FREQ=WEEKLY;UNTIL=20260101T000000Z"}, "rrule"),
    ({"rrule": "FREQ=WEEKLY;BYSETPOS=1;COUNT=3"}, "rrule"),
    ({"colour": "red"}, "colour"),
])
def test_bad_input_is_400_naming_the_field_and_saves_nothing(app, client, setup, changes,
                                                              param):
    resp = create(client, setup["alice"], **changes)
    assert resp.status_code == 400
    assert resp.get_json()["param"] == param
    assert rows(app) == 0


def test_unknown_venue_is_400_naming_the_venue(app, client, setup):
    resp = create(client, setup["admin"], venue="nowhere")
    assert resp.status_code == 400
    assert resp.get_json()["param"] == "venue"
    assert rows(app) == 0


def test_no_token_is_401(app, client, setup):
    resp = client.post("/api/venues/museum-a/activities", json=STORY_HOUR)
    assert resp.status_code == 401
    aid = create(client, setup["alice"]).get_json()["id"]
    assert client.put(f"/api/activities/{aid}", json={"title_en": "x"}).status_code == 401
    assert client.delete(f"/api/activities/{aid}").status_code == 401
    assert rows(app) == 1


def test_a_manager_cannot_touch_another_venues_activities(app, client, setup):
    assert create(client, setup["bob"]).status_code == 403
    aid = create(client, setup["alice"]).get_json()["id"]
    put = client.put(f"/api/activities/{aid}", json={"title_en": "Mine now"},
                     headers=bearer(setup["bob"]))
    assert put.status_code == 403
    gone = client.delete(f"/api/activities/{aid}", headers=bearer(setup["bob"]))
    assert gone.status_code == 403
    one = client.delete(f"/api/activities/{aid}?occurrence=2027-01-23T10:00:00%2B08:00",
                        headers=bearer(setup["bob"]))
    assert one.status_code == 403
    body = client.get(f"/api/activities/{aid}").get_json()
    assert body["title_en"] == "Saturday story hour"
    assert body["status"] == "scheduled"
    assert body["cancelled_occurrences"] == []


def test_an_administrator_may_change_any_venues_activities(client, setup):
    aid = create(client, setup["alice"]).get_json()["id"]
    resp = client.put(f"/api/activities/{aid}", json={"title_en": "Story time"},
                      headers=bearer(setup["admin"]))
    assert resp.status_code == 200
    assert resp.get_json()["title_en"] == "Story time"


def test_edit_keeps_other_fields_and_a_bad_edit_changes_nothing(app, client, setup):
    aid = create(client, setup["alice"]).get_json()["id"]
    resp = client.put(f"/api/activities/{aid}", json={"price": 15.5},
                      headers=bearer(setup["alice"]))
    assert resp.get_json()["price"] == 15.5
    assert resp.get_json()["title_zh"] == "周六故事会"
    bad = client.put(f"/api/activities/{aid}", json={"end": "2027-01-16T08:00:00+08:00",
                                                     "title_en": "Changed"},
                     headers=bearer(setup["alice"]))
    assert bad.status_code == 400
    assert bad.get_json()["param"] == "end"
    assert client.get(f"/api/activities/{aid}").get_json()["title_en"] == "Saturday story hour"


def test_cancelling_an_occurrence_the_series_lacks_is_400(app, client, setup):
    aid = create(client, setup["alice"]).get_json()["id"]
    resp = client.delete(f"/api/activities/{aid}?occurrence=2027-01-17T10:00:00%2B08:00",
                         headers=bearer(setup["alice"]))
    assert resp.status_code == 400
    assert resp.get_json()["param"] == "occurrence"
    assert rows(app, CancelledOccurrence) == 0


def test_venue_listing_and_detail_give_the_next_occurrences(client, setup):
    create(client, setup["alice"])
    found = client.get("/api/venues/museum-a/activities?from=2027-01-01&to=2027-03-01")
    acts = found.get_json()["activities"]
    assert len(acts) == 1
    detail = client.get(f"/api/activities/{acts[0]['id']}").get_json()
    assert "occurrences" in detail
    assert client.get("/api/venues/park-b/activities?from=2027-01-01").get_json() == {
        "activities": []}
    assert client.get("/api/activities/999").status_code == 404


def test_expansion_is_on_beijing_clock():
    start = datetime.fromisoformat("2027-01-16T01:00:00+08:00")  # Friday 17:00 UTC
    got = activities.expand(activities.utc(start), "FREQ=WEEKLY;BYDAY=SA;COUNT=2")
    assert [s.date() for s in got] == [date(2027, 1, 16), date(2027, 1, 23)]
    assert got[1] - got[0] == timedelta(days=7)


# --- iCalendar ---------------------------------------------------------------------------


def parse_ics(resp) -> Calendar:
    assert resp.status_code == 200
    assert resp.mimetype == "text/calendar"
    return Calendar.from_ical(resp.data)


def test_venue_feed_field_by_field(client, setup):
    aid = create(client, setup["alice"]).get_json()["id"]
    client.delete(f"/api/activities/{aid}?occurrence=2027-01-30T10:00:00%2B08:00",
                  headers=bearer(setup["alice"]))
    cal = parse_ics(client.get("/venues/museum-a/activities.ics?from=2027-01-01&lang=en"))
    assert str(cal["VERSION"]) == "2.0"
    zones = [c for c in cal.walk("VTIMEZONE")]
    assert [str(z["TZID"]) for z in zones] == ["Asia/Shanghai"]
    events = cal.walk("VEVENT")
    assert len(events) == 2
    master, cancelled = events
    assert str(master["UID"]) == f"activity-{aid}@voicemap"
    assert str(master["SUMMARY"]) == "Saturday story hour"
    start = master.decoded("DTSTART")
    assert start.isoformat() == "2027-01-16T10:00:00+08:00"
    assert str(start.tzinfo) == "Asia/Shanghai"
    assert master["DTSTART"].params["TZID"] == "Asia/Shanghai"
    assert master.decoded("DTEND").isoformat() == "2027-01-16T11:30:00+08:00"
    assert master["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=4"
    assert str(master["STATUS"]) == "CONFIRMED"
    assert master["SEQUENCE"] == 1
    assert str(master["URL"]) == "https://example.org/book"
    assert "Picture books read aloud." in str(master["DESCRIPTION"])
    assert str(master["LOCATION"]).startswith("Venue museum-a")
    assert master.decoded("GEO") is not None
    assert str(cancelled["UID"]) == str(master["UID"])
    assert cancelled.decoded("RECURRENCE-ID").isoformat() == "2027-01-30T10:00:00+08:00"
    assert str(cancelled["STATUS"]) == "CANCELLED"


def test_uid_is_stable_and_sequence_grows(client, setup):
    aid = create(client, setup["alice"]).get_json()["id"]
    first = parse_ics(client.get("/activities.ics?from=2027-01-01")).walk("VEVENT")[0]
    client.put(f"/api/activities/{aid}", json={"title_zh": "故事会"},
               headers=bearer(setup["alice"]))
    second = parse_ics(client.get("/activities.ics?from=2027-01-01")).walk("VEVENT")[0]
    assert str(first["UID"]) == str(second["UID"])
    assert second["SEQUENCE"] == first["SEQUENCE"] + 1


def test_city_feed_honours_filters_and_marks_cancelled_activities(client, setup):
    create(client, setup["alice"], rrule=None)
    bid = create(client, setup["bob"], venue="park-b", rrule=None, price=30).get_json()["id"]
    client.delete(f"/api/activities/{bid}", headers=bearer(setup["bob"]))
    cal = parse_ics(client.get("/activities.ics?from=2027-01-01&to=2027-02-01"))
    statuses = sorted(str(e["STATUS"]) for e in cal.walk("VEVENT"))
    assert statuses == ["CANCELLED", "CONFIRMED"]
    free = parse_ics(client.get("/activities.ics?from=2027-01-01&to=2027-02-01&free=1"))
    assert len(free.walk("VEVENT")) == 1
    assert client.get("/venues/nowhere/activities.ics").status_code == 404


# --- the venue page and the sample data --------------------------------------------------


def test_venue_page_lists_upcoming_activities_with_a_calendar_link(client, setup):
    soon = activities.local(activities.utcnow()).replace(microsecond=0) + timedelta(days=2)
    later = soon + timedelta(hours=1)
    aid = create(client, setup["alice"], rrule="FREQ=WEEKLY;COUNT=2", start=soon.isoformat(),
                 end=later.isoformat(), title_en="Soon <b>story</b>").get_json()["id"]
    client.delete(f"/api/activities/{aid}?occurrence="
                  f"{(soon + timedelta(days=7)).isoformat().replace('+', '%2B')}",
                  headers=bearer(setup["alice"]))
    html = client.get("/venues/museum-a?lang=en").get_data(as_text=True)
    assert html.count('class="vm-act"') == 1
    assert html.count('class="vm-act vm-act-cancelled"') == 1
    assert "Soon &lt;b&gt;story&lt;/b&gt;" in html
    assert 'href="/venues/museum-a/activities.ics?lang=en"' in html
    assert "Add to calendar" in html


def test_venue_page_without_activities_says_so(client, setup):
    html = client.get("/venues/park-b?lang=en").get_data(as_text=True)
    assert "No activities coming up." in html


def test_demo_activities_are_labelled_and_added_once(app, runner, setup):
    load(app, [feature("lib-1", 116.30, 39.93, "library"),
               feature("sci-1", 116.31, 39.94, "science_site")])
    first = runner.invoke("demo-activities")
    assert first.exit_code == 0, first.output
    assert first.output.startswith("4 sample activities and 3 sample information page(s)")
    again = runner.invoke("demo-activities")
    assert again.output.startswith("0 sample activities and 0 sample information page(s)")
    with app.app_context():
        titles = db.get_session().execute(select(Activity.title_en, Activity.title_zh)).all()
    assert len(titles) == 4
    assert all(en.startswith("[Sample] ") and zh.startswith("【示例】") for en, zh in titles)


# --- /manage -------------------------------------------------------------------------------


def manage_sign_in(client, token) -> str:
    page = client.get("/manage/").get_data(as_text=True)
    token_csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    client.post("/manage/signin", data={"token": token, "csrf": token_csrf})
    page = client.get("/manage/").get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


FORM = {"title_zh": "手工课", "title_en": "Craft class", "day": "2027-01-16",
        "start_time": "10:00", "end_time": "11:00", "weekly": "1", "until": "2027-02-06",
        "min_age": "4", "max_age": "9", "price": "0"}


def test_manager_adds_edits_and_cancels_through_the_forms(app, client, setup):
    csrf = manage_sign_in(client, setup["alice"])
    resp = client.post("/manage/venues/museum-a/activities", data={**FORM, "csrf": csrf})
    assert resp.status_code == 303
    fc = client.get("/api/activities?from=2027-01-01&to=2027-02-28").get_json()
    assert [f["properties"]["start"] for f in fc["features"]] == [
        "2027-01-16T10:00:00+08:00", "2027-01-23T10:00:00+08:00",
        "2027-01-30T10:00:00+08:00", "2027-02-06T10:00:00+08:00"]
    aid = fc["features"][0]["properties"]["activity_id"]
    page = client.get(f"/manage/activities/{aid}").get_data(as_text=True)
    assert 'value="2027-02-06"' in page
    edit = client.post(f"/manage/activities/{aid}", data={**FORM, "title_en": "Crafts",
                                                          "csrf": csrf})
    assert edit.status_code == 303
    client.post(f"/manage/activities/{aid}/cancel",
                data={"occurrence": "2027-01-23T10:00:00+08:00", "csrf": csrf})
    body = client.get(f"/api/activities/{aid}").get_json()
    assert body["title_en"] == "Crafts"
    assert body["cancelled_occurrences"] == ["2027-01-23T10:00:00+08:00"]


def test_form_errors_name_the_field_and_save_nothing(app, client, setup):
    csrf = manage_sign_in(client, setup["alice"])
    resp = client.post("/manage/venues/museum-a/activities",
                       data={**FORM, "end_time": "09:00", "csrf": csrf})
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "end must be after start" in page
    marked = re.findall(r'<input id="(\w+)"[^>]*aria-invalid="true"', page)
    assert marked == ["end_time"]
    assert rows(app) == 0
    assert client.get("/manage/venues/park-b/activities").status_code == 403


def test_administrator_previews_then_publishes_an_article(client, setup):
    csrf = manage_sign_in(client, setup["admin"])
    form = {"section": "about", "slug": "hello", "title_zh": "你好", "title_en": "Hello",
            "body_zh": "**你好**", "body_en": "<script>x()</script>[a](javascript:y())",
            "status": "published", "csrf": csrf}
    preview = client.post("/manage/articles", data={**form, "action": "preview"})
    html = preview.get_data(as_text=True)
    assert "<strong>你好</strong>" in html
    assert "<script>x()" not in html
    assert client.get("/api/articles").get_json()["articles"] == []
    saved = client.post("/manage/articles", data={**form, "action": "save"})
    assert saved.status_code == 303
    assert [a["slug"] for a in client.get("/api/articles").get_json()["articles"]] == ["hello"]


def test_venue_managers_cannot_edit_articles(client, setup):
    manage_sign_in(client, setup["alice"])
    assert client.get("/manage/articles").status_code == 403


def test_day_listing_keeps_an_overnight_occurrence_from_the_day_before(client, setup):
    # Fridays 23:00 to Saturday 01:00; and a Tuesday series that never touches Saturday.
    create(client, setup["alice"], start="2027-01-15T23:00:00+08:00",
           end="2027-01-16T01:00:00+08:00", rrule="FREQ=WEEKLY;COUNT=3", title_en="Night")
    create(client, setup["alice"], start="2027-01-12T10:00:00+08:00",
           end="2027-01-12T11:00:00+08:00", rrule="FREQ=WEEKLY;COUNT=3", title_en="Tuesday")
    fc = client.get("/api/activities?from=2027-01-23&to=2027-01-23").get_json()
    assert [(f["properties"]["title_en"], f["properties"]["start"]) for f in fc["features"]] == [
        ("Night", "2027-01-22T23:00:00+08:00")]


def test_weekday_mask_covers_the_window_and_the_day_before():
    begin, end = activities.window("2027-01-23", "2027-01-23")  # a Saturday
    assert activities.weekday_mask(begin, end) == (1 << 4) | (1 << 5)  # Friday, Saturday
    begin, end = activities.window("2027-01-01", "2027-01-07")
    assert activities.weekday_mask(begin, end) == activities.ALL_DAYS
