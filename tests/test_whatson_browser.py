""""What's on" on the map in headless Chromium on a phone: a date, an age, time or distance
order, cancelled occurrences marked; screenshots at 360 and 320 px wide."""

from __future__ import annotations

import test_map_browser as harness
from test_map_browser import VIEW

from voicemap import activities, db

# The map tests' fixtures: a browser, and the sites with their venues.
visit = harness.visit  # the browser fixture is conftest's
site, postgis_site, spatialite_db = harness.site, harness.postgis_site, harness.spatialite_db

DAY = "2027-03-06"  # a Saturday
HERE = {"latitude": 39.905, "longitude": 116.40}


def add_activities(s) -> None:
    """Three activities on DAY (one a cancelled occurrence of a weekly series), once per site."""
    if s.app.extensions.get("test.whatson"):
        return
    with s.app.app_context():
        session = db.get_session()
        series = activities.add(session, "library-0", {
            "title_zh": "故事会", "title_en": "Story hour", "start": f"{DAY}T09:00:00+08:00",
            "end": f"{DAY}T10:00:00+08:00", "rrule": "FREQ=WEEKLY;COUNT=3", "min_age": 3,
            "max_age": 10})
        activities.add(session, "museum-0", {
            "title_zh": "博物馆寻宝", "title_en": "Museum treasure hunt",
            "start": f"{DAY}T10:00:00+08:00", "end": f"{DAY}T11:30:00+08:00", "min_age": 3,
            "max_age": 8, "price": 20})
        activities.add(session, "park-0", {
            "title_zh": "自然观察", "title_en": "Nature walk", "start": f"{DAY}T14:00:00+08:00",
            "end": f"{DAY}T15:00:00+08:00", "min_age": 6, "max_age": 12})
        series.cancelled.append(activities.CancelledOccurrence(
            starts_at=activities.parse_time(f"{DAY}T09:00:00+08:00", "start")))
        session.commit()
    s.app.extensions["test.whatson"] = True


def open_whatson(v, day: str = DAY) -> None:
    v.page.click("#vm-whatson-btn")
    v.page.wait_for_function("() => voicemap.whatson.loads >= 1")
    v.page.fill("#vm-whatson-date", day)
    v.page.wait_for_function("() => voicemap.whatson.loads >= 2")


def listed(v) -> list[str]:
    return v.page.evaluate("Array.from(document.querySelectorAll('#vm-whatson-list li'))"
                           ".map(li => li.dataset.activity + '@' + li.dataset.start)")


def test_whats_on_lists_a_days_activities_in_the_apis_order(backend, request, visit):
    s = request.getfixturevalue("site" if backend == "spatialite" else "postgis_site")
    add_activities(s)
    v = visit(s, f"/?lang=en&{VIEW}")
    open_whatson(v)
    expected = s.api(f"/api/activities?from={DAY}&to={DAY}")["features"]
    assert listed(v) == [f"{f['properties']['activity_id']}@{f['properties']['start']}"
                         for f in expected]
    assert len(expected) == 3
    first = v.page.locator("#vm-whatson-list li").first
    assert "vm-act-cancelled" in first.get_attribute("class")
    assert first.locator(".vm-act-flag").inner_text() == "Cancelled"
    assert v.page.locator("path.vm-wo-ring").count() == 3
    v.settle()
    v.shot(f"whats-on-phone-360-{backend}")


def test_age_filter_and_distance_order(site, visit):
    add_activities(site)
    v = visit(site, f"/?lang=en&{VIEW}", geolocation=HERE)
    v.page.click("#vm-near-btn")
    v.page.wait_for_selector("#vm-near-list li")
    v.page.click("#vm-near-close")
    open_whatson(v)
    v.page.select_option("#vm-whatson-age", "10")
    v.page.wait_for_function("() => voicemap.whatson.loads >= 3")
    titles = v.page.locator("#vm-whatson-list .vm-near-name").all_inner_texts()
    assert titles == ["Story hour", "Nature walk"]
    v.page.click("[data-sort=distance]")
    dists = v.page.evaluate("Array.from(document.querySelectorAll('#vm-whatson-list li'))"
                            ".map(li => li.querySelector('.vm-act-when').textContent)")
    assert len(dists) == 2
    order = v.page.evaluate("voicemap.whatson.features.map(f => f.vmDist)")
    assert order == sorted(order)
    v.page.locator("#vm-whatson-list .vm-near-main").last.click()
    v.page.wait_for_selector(".vm-popup[data-venue]")
    v.settle()
    v.shot("whats-on-chosen-phone-360")


def test_whats_on_at_320_px_in_chinese(site, visit):
    add_activities(site)
    v = visit(site, f"/?lang=zh&{VIEW}", viewport={"width": 320, "height": 640})
    open_whatson(v)
    assert v.page.locator("#vm-whatson-list li").count() == 3
    overflow = v.page.evaluate("""() => Array.from(document.querySelectorAll(
        '#vm-whatson *, .vm-bar *')).filter(e => {
            const r = e.getBoundingClientRect();
            return r.width > 0 && (r.right > window.innerWidth + 0.5 || r.left < -0.5);
        }).map(e => e.outerHTML.slice(0, 60))""")
    assert overflow == []
    v.settle()
    v.shot("whats-on-phone-320-zh")


def test_manage_activity_form_fits_a_phone(site, visit):
    from voicemap import auth

    with site.app.app_context(), db.session_scope() as s:
        _, token = auth.create_manager(s, "Phone manager", ["museum-0"])
    v = visit(site, "/manage/", wait=False)
    v.page.fill("#token", token)
    v.page.click("button[type=submit]")
    v.page.goto(site.url + "/manage/venues/museum-0/activities")
    v.page.fill("#title_zh", "手工课")
    v.page.fill("#title_en", "Craft class")
    v.page.fill("#day", "2027-03-13")
    v.page.fill("#start_time", "10:00")
    v.page.fill("#end_time", "09:00")
    v.page.click("form:has(#title_zh) button[type=submit]")
    v.page.wait_for_selector(".flash.error")
    assert v.page.evaluate("document.activeElement.id") == "end_time"
    wide = v.page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert wide is False
    v.shot("manage-activity-form-phone-360")


def test_information_page_fits_a_narrow_phone(site, visit):
    from voicemap import articles

    with site.app.app_context():
        session = db.get_session()
        if not articles.find(session, section="rights"):
            articles.add(session, {
                "section": "rights", "slug": "play", "title_zh": "游戏的权利",
                "title_en": "The right to play", "status": "published",
                "body_zh": "每个孩子都有休息和游戏的权利。[联合国](https://www.unicef.org/)",
                "body_en": "Every child has the right to rest and play. "
                           "See [UNICEF](https://www.unicef.org/) and [the map](/).\n\n"
                           "<script>alert(1)</script>"})
    v = visit(site, "/info/rights/play?lang=en", viewport={"width": 320, "height": 640},
              wait=False)
    v.page.wait_for_selector(".vm-article-body")
    assert v.page.locator(".vm-ext-mark").count() == 1
    wide = v.page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert wide is False
    v.shot("info-article-phone-320-en")
    v.page.click("a[hreflang=zh]")
    v.page.wait_for_selector("html[lang=zh-CN]")
    v.shot("info-article-phone-320-zh")
