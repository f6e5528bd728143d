"""Judging (issue 11) on both backends: a whole campaign (works submitted and reviewed, three
jurors, one of them scoring only part; ranking checked against hand-computed weighted means,
a tie included; awards by hand and by the plan; publication; public results, exhibition,
the map and the printable set), blindness (nothing a juror can fetch names the child, their
district or guardian), and the refusals (another campaign's juror, a manager, an
administrator, outside judging, bad scores naming the criterion)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import zlib

import pytest
from helpers import feature, load
from sqlalchemy import func, select
from test_works import admin_token, approve, open_campaign, png, post
from test_works import app as app  # noqa: F401,PLC0414  (its submission limit is not reached)

from voicemap import auth, db, ranking
from voicemap import works as service
from voicemap.models import Score

CID = "me-and-my-city"
# Every child's name, district and guardian: none may reach a juror.
CHILDREN = {
    "W1": {"narrator_name": "Xiaoming", "district": "Haidian", "consent_by": "Guo Fangfang",
           "guardian_contact": "guo.ff@example.com", "title": "The bell tower at dusk",
           "lat": "39.948", "lon": "116.392"},
    "W2": {"narrator_name": "Lingling", "district": "Chaoyang", "consent_by": "Hu Jianguo",
           "guardian_contact": "+86 139 1111 2222", "title": "Bus number 1"},
    "W3": {"narrator_name": "Dongdong", "district": "Xicheng", "consent_by": "Ma Lihua",
           "guardian_contact": "ma.lihua@example.org", "title": "Kites in the park"},
    "W4": {"narrator_name": "Tiantian", "district": "Fengtai", "consent_by": "Zhao Qiang",
           "guardian_contact": "zq@example.net", "title": "Grandma's noodles"},
    "W5": {"narrator_name": "Yueyue", "district": "Tongzhou", "consent_by": "Sun Li",
           "guardian_contact": "+86 135 0000 1111", "title": "The canal", "narrator_age": "11",
           "consent_public": "false"},
    "P1": {"narrator_name": "Beibei", "district": "Shunyi", "consent_by": "Lin Tao",
           "guardian_contact": "lin.tao@example.com", "title": "My school gate",
           "kind": "painting"},
    "R1": {"narrator_name": "Huanhuan", "district": "Miyun", "consent_by": "Qian Jun",
           "guardian_contact": "qj@example.com", "title": "Rejected one"},
}
SECRETS = [v for c in CHILDREN.values() for k, v in c.items()
           if k in ("narrator_name", "district", "consent_by", "guardian_contact")]
# Scores (creativity, expression, city) per juror; weights 40/30/30. Juror 3 scores only W1.
SCORES = {
    "W1": {"J1": (8, 7, 9), "J2": (6, 8, 7), "J3": (9, 9, 9)},  # 8.0, 6.9, 9.0 -> 7.9667
    "W2": {"J1": (7, 7, 7), "J2": (9, 6, 8)},                   # 7.0, 7.8 -> 7.4
    "W3": {"J1": (7, 7, 8), "J2": (9, 7, 6)},                   # 7.3, 7.5 -> 7.4 (tie)
    "W4": {"J1": (5, 5, 5)},                                    # one juror: too few
    "W5": {"J1": (9, 8, 7), "J2": (7, 8, 9)},                   # 8.1, 7.9 -> 8.0
    "P1": {"J1": (6, 6, 6), "J2": (4, 4, 4)},                   # 6.0, 4.0 -> 5.0
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def as_scores(triple) -> dict[str, int]:
    return dict(zip(("creativity", "expression", "city"), triple, strict=True))


def csrf(client, path="/manage/") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def juror(runner, name: str, cid: str = CID) -> str:
    r = runner.invoke("create-manager", name, "--juror", "--campaign", cid)
    assert r.exit_code == 0, r.output
    assert f"juror of campaign {cid}" in r.output
    return r.output.strip().splitlines()[-1]


@pytest.fixture
def campaign(app, client, runner):  # noqa: F811
    """The campaign with its works submitted and reviewed, three jurors, a juror of another
    campaign, a venue manager and an administrator; still open."""
    load(app, [feature("park-0", 116.385, 39.90, "park", name_en="Example Park")])
    open_campaign(app)
    open_campaign(app, "other-city")
    ids = {}
    for key, fields in CHILDREN.items():
        over = {"story": f"About {fields['title'].lower()}: we walk there on Sundays.",
                **fields}
        file = (png(), "p.png") if fields.get("kind") == "painting" else None
        r = post(client, file=file, **over)
        assert r.status_code == 201, r.get_json()
        ids[key] = r.get_json()["id"]
    admin = admin_token(app)
    for key in ("W1", "W2", "W3", "W4", "W5", "P1"):
        approve(client, admin, ids[key])
    approve(client, admin, ids["P1"], "flag", reason="a school badge")
    approve(client, admin, ids["R1"], "reject", reason="not a child's work")
    with app.app_context(), db.session_scope() as s:
        manager = auth.create_manager(s, "Park manager", ["park-0"])[1]
    tokens = {j: juror(runner, f"Juror {j}") for j in ("J1", "J2", "J3")}
    tokens["JX"] = juror(runner, "Juror of another", "other-city")
    return {"ids": ids, "admin": admin, "manager": manager, "jurors": tokens}


def put(client, token, work_id, scores):
    return client.put(f"/api/works/{work_id}/scores", json=scores, headers=bearer(token))


def score_all(client, c) -> None:
    for key, by in SCORES.items():
        for j, triple in by.items():
            r = put(client, c["jurors"][j], c["ids"][key], as_scores(triple))
            assert r.status_code == 200, r.get_json()


def test_the_ranking_arithmetic_by_hand():
    crit = ranking.parse_criteria(None)
    assert crit == [("creativity", 40.0), ("expression", 30.0), ("city", 30.0)]
    assert ranking.weighted(crit, as_scores((8, 7, 9))) == pytest.approx(8.0)
    assert ranking.weighted(crit, as_scores((6, 8, 7))) == pytest.approx(6.9)
    entries = [ranking.Entry("a", "writing", "7-9", [7.0, 7.8]),
               ranking.Entry("b", "writing", "7-9", [7.3, 7.5]),
               ranking.Entry("c", "writing", "7-9", [8.0, 6.9, 9.0]),
               ranking.Entry("d", "writing", "7-9", [9.5]),
               ranking.Entry("e", "writing", "7-9", [1.0, 2.0])]
    ranked = ranking.rank(entries, min_jurors=2)
    assert [(e.work_id, e.rank) for e in ranked] == [("c", 1), ("a", 2), ("b", 2), ("e", 4),
                                                     ("d", None)]
    assert ranked[-1].too_few
    awards = ranking.auto_awards(ranked, ranking.parse_award_plan("gold:1,silver:1,bronze:1"))
    assert awards == {"c": "gold", "a": "silver", "b": "silver", "e": None}
    with pytest.raises(ranking.BadRequest) as info:
        ranking.parse_criteria("creativity:40,city")
    assert info.value.details["param"] == "criteria"


def test_a_whole_campaign(app, client, runner, campaign, tmp_path):  # noqa: F811
    c, ids = campaign, campaign["ids"]
    j1, j2 = c["jurors"]["J1"], c["jurors"]["J2"]
    # open: scores are refused
    r = put(client, j1, ids["W1"], as_scores((8, 7, 9)))
    assert r.status_code == 409
    assert r.get_json()["code"] == "not_judging"
    assert runner.invoke("campaign", "set-status", CID, "judging").exit_code == 0

    # a juror sees the approved and flagged works that may be judged; not the rejected one
    listed = client.get(f"/api/judging/{CID}/works", headers=bearer(j1)).get_json()
    assert {w["id"] for w in listed["works"]} == {ids[k] for k in SCORES}
    assert (listed["total"], listed["scored"]) == (6, 0)
    assert [x["name"] for x in listed["criteria"]] == ["creativity", "expression", "city"]
    assert client.put(f"/api/works/{ids['R1']}/scores", json=as_scores((5, 5, 5)),
                      headers=bearer(j1)).status_code == 404

    score_all(client, c)
    # replacing a score keeps one row per (work, juror)
    assert put(client, j1, ids["W4"], as_scores((5, 5, 5))).status_code == 200
    listed = client.get(f"/api/judging/{CID}/works", headers=bearer(j1)).get_json()
    assert (listed["total"], listed["scored"]) == (6, 6)
    j3 = client.get(f"/api/judging/{CID}/works", headers=bearer(c["jurors"]["J3"])).get_json()
    assert (j3["total"], j3["scored"]) == (6, 1)

    # a juror reads back their own scores only
    mine = client.get(f"/api/works/{ids['W2']}/scores", headers=bearer(j2)).get_json()
    assert mine["scores"] == {"creativity": 9, "expression": 6, "city": 8}
    assert mine["weighted"] == pytest.approx(7.8)
    assert "juror_id" not in json.dumps(mine)
    every = client.get(f"/api/works/{ids['W2']}/scores", headers=bearer(c["admin"])).get_json()
    assert len(every["scores"]) == 2

    # the results, by hand: writing 7-9: W1 7.9667 (1st), W2 = W3 = 7.4 (both 2nd), W4 one
    # juror (too few, unranked); writing 10-12: W5 8.0; painting 7-9: P1 5.0
    r = runner.invoke("campaign", "results", CID, "--csv", str(tmp_path / "r.csv"))
    assert r.exit_code == 0, r.output
    raw = (tmp_path / "r.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(rows[0])[:7] == ["rank", "work_id", "kind", "age_group", "score", "jurors",
                                 "spread"]
    got = [(x["rank"], x["work_id"], x["kind"], x["age_group"], float(x["score"]),
            int(x["jurors"]), float(x["spread"])) for x in rows]
    w2, w3 = sorted([ids["W2"], ids["W3"]])
    assert got == [
        ("1", ids["P1"], "painting", "7-9", 5.0, 2, 2.0),
        ("1", ids["W1"], "writing", "7-9", pytest.approx(7.9667, abs=1e-4), 3,
         pytest.approx(2.1)),
        ("2", w2, "writing", "7-9", pytest.approx(7.4), 2,
         pytest.approx(0.8 if w2 == ids["W2"] else 0.2)),
        ("2", w3, "writing", "7-9", pytest.approx(7.4), 2,
         pytest.approx(0.8 if w3 == ids["W2"] else 0.2)),
        ("", ids["W4"], "writing", "7-9", 5.0, 1, 0.0),
        ("1", ids["W5"], "writing", "10-12", pytest.approx(8.0), 2, pytest.approx(0.2)),
    ]
    assert rows[4]["too_few_jurors"] == "yes"
    assert "too few jurors" in r.output

    # awards: by the plan (gold, silver, bronze by rank; the tie shares silver), then one by
    # hand; nothing is public before publication
    r = runner.invoke("campaign", "award", CID, "--auto")
    assert r.exit_code == 0, r.output
    assert runner.invoke("campaign", "award", CID, ids["W4"], "merit").exit_code == 0
    bad = runner.invoke("campaign", "award", CID, ids["W1"], "platinum")
    assert bad.exit_code != 0
    with app.app_context():
        s = db.get_session()
        awards = {k: s.get(service.Work, ids[k]).award for k in CHILDREN}
    assert awards == {"W1": "gold", "W2": "silver", "W3": "silver", "W4": "merit",
                      "W5": "gold", "P1": "gold", "R1": None}
    assert client.get(f"/api/campaigns/{CID}/results").status_code == 404
    early = client.get(f"/campaigns/{CID}/results?lang=en")
    assert early.status_code == 404 and "not been published" in early.get_data(as_text=True)
    assert CHILDREN["W1"]["title"] not in early.get_data(as_text=True)
    early = client.get(f"/campaigns/{CID}/results?lang=zh").get_data(as_text=True)
    assert "这个活动的评选结果还没有公布" in early and "not been published" not in early
    assert client.get(f"/campaigns/{CID}/exhibition").status_code == 404
    assert client.get("/campaigns/no-such/results").status_code == 404
    assert client.get(f"/api/works/{ids['W1']}").get_json()["award"] is None
    assert client.get("/api/works?award=gold").get_json()["total"] == 0

    r = runner.invoke("campaign", "publish-results", CID)
    assert r.exit_code == 0 and "closed" in r.output
    assert put(client, j1, ids["W1"], as_scores((1, 1, 1))).status_code == 409

    # public results: the winners per group; a winner that is not public has no title/name
    res = client.get(f"/api/campaigns/{CID}/results").get_json()
    groups = {(g["kind"], g["age_group"]): g["winners"] for g in res["groups"]}
    assert [(w["award"], w.get("id")) for w in groups[("writing", "7-9")]] == [
        ("gold", ids["W1"]), ("silver", w2), ("silver", w3), ("merit", ids["W4"])]
    hidden = groups[("writing", "10-12")] + groups[("painting", "7-9")]
    assert hidden == [{"award": "gold", "public": False,
                       "note": "award winner (not shown at the family's request)"}] * 2
    body = json.dumps(res, ensure_ascii=False)
    for key in ("W5", "P1"):
        assert CHILDREN[key]["title"] not in body
        assert CHILDREN[key]["narrator_name"] not in body
        assert ids[key] not in body
    page = client.get(f"/campaigns/{CID}/results?lang=en").get_data(as_text=True)
    assert "Award winner (not shown at the family&#39;s request)" in page
    assert CHILDREN["W1"]["title"] in page and CHILDREN["P1"]["title"] not in page
    show = client.get(f"/campaigns/{CID}/exhibition?lang=zh").get_data(as_text=True)
    assert show.count('class="vm-slide"') == 4
    assert '<span lang="zh-CN">金奖</span> · <span lang="en">Gold award</span>' in show
    assert CHILDREN["W5"]["title"] not in show
    assert "autoplay" not in show
    # the captions are in both languages; the page's own words in its language only
    assert 'aria-label="我和我的城市"' in show and ">全屏</button>" in show
    show = client.get(f"/campaigns/{CID}/exhibition?lang=en").get_data(as_text=True)
    assert 'aria-label="Me and my city"' in show and ">Full screen</button>" in show
    assert "全屏" not in show and '<span lang="zh-CN">金奖</span>' in show
    assert client.get(f"/api/works/{ids['W1']}").get_json()["award"] == "gold"
    assert client.get("/api/works?award=gold").get_json()["total"] == 1
    # the map's works layer marks the award (W1 has a point)
    rows_map = client.get("/api/map/works").get_json()["works"]
    assert [w[8] for w in rows_map if w[0] == ids["W1"]] == ["gold"]

    # the printable set
    out = tmp_path / "exhibit"
    r = runner.invoke("campaign", "exhibit", CID, "-o", str(out), "--no-pdf",
                      env={"VOICEMAP_PUBLIC_URL": "https://voicemap.example.org"})
    assert r.exit_code == 0, r.output
    pages = sorted(p.name for p in out.glob("*.html") if p.name != "all.html")
    assert pages == sorted(f"{ids[k]}.html" for k in ("W1", "W2", "W3", "W4"))
    sheet = (out / f"{ids['W1']}.html").read_text(encoding="utf-8")
    assert "@page { size: A4" in sheet and "<svg" in sheet and "<script" not in sheet
    assert f"https://voicemap.example.org/works/{ids['W1']}" in sheet
    assert "Xiaoming" in sheet and "金奖" in sheet and "Gold award" in sheet
    assert 'src="http' not in sheet  # self-contained
    cat = (out / "catalogue.csv").read_bytes()
    assert cat.startswith(b"\xef\xbb\xbf")
    geo = json.loads((out / "catalogue.geojson").read_text(encoding="utf-8"))
    pinned = [f for f in geo["features"] if f["geometry"]]
    assert [f["id"] for f in pinned] == [ids["W1"]]
    lon, lat = pinned[0]["geometry"]["coordinates"]
    assert abs(lon - 116.392) < 0.006 and abs(lat - 39.948) < 0.0045  # the ~500 m cell
    for key in ("W5", "P1"):
        assert CHILDREN[key]["title"] not in (out / "all.html").read_text(encoding="utf-8")


def test_a_painting_page_in_the_printable_set_embeds_its_image(app, client, runner,  # noqa: F811
                                                              campaign, tmp_path):
    c, ids = campaign, campaign["ids"]
    with app.app_context():
        s = db.get_session()
        s.get(service.Work, ids["P1"]).flagged = False  # now public
        s.commit()
    runner.invoke("campaign", "set-status", CID, "judging")
    runner.invoke("campaign", "award", CID, ids["P1"], "gold")
    runner.invoke("campaign", "publish-results", CID)
    out = tmp_path / "set"
    r = runner.invoke("campaign", "exhibit", CID, "-o", str(out), "--no-pdf",
                      env={"VOICEMAP_PUBLIC_URL": "https://voicemap.example.org"})
    assert r.exit_code == 0, r.output
    sheet = (out / f"{ids['P1']}.html").read_text(encoding="utf-8")
    assert 'src="data:image/' in sheet
    assert c["admin"]  # the administrator's token is unused here


def test_the_printable_set_as_pdf_renders_chinese(app, client, runner, campaign,  # noqa: F811
                                                  tmp_path):
    """WeasyPrint (the test extra) renders all.html to exhibition.pdf: one A4 page per
    work, with a CJK font (fonts-wqy-microhei here) embedded for the Chinese text."""
    ids = campaign["ids"]
    runner.invoke("campaign", "set-status", CID, "judging")
    for key, award in (("W1", "gold"), ("W2", "silver")):
        runner.invoke("campaign", "award", CID, ids[key], award)
    runner.invoke("campaign", "publish-results", CID)
    out = tmp_path / "pdf"
    r = runner.invoke("campaign", "exhibit", CID, "-o", str(out),
                      env={"VOICEMAP_PUBLIC_URL": "https://voicemap.example.org"})
    assert r.exit_code == 0, r.output
    data = (out / "exhibition.pdf").read_bytes()
    assert data.startswith(b"%PDF")
    text = data
    for m in re.finditer(rb"stream\r?\n", data):
        end = data.find(b"endstream", m.end())
        try:
            text += zlib.decompress(data[m.end():end])
        except zlib.error:
            pass
    assert len(re.findall(rb"/Type\s*/Page\b", text)) == 2
    assert re.search(rb"/MediaBox\s*\[\s*0 0 595", text)  # A4: 595 x 842 pt
    fonts = set(re.findall(rb"/BaseFont\s*/[A-Z]+\+([A-Za-z0-9-]+)", text))
    assert any(b"WenQuanYi" in f or b"CJK" in f for f in fonts), fonts


def test_scores_are_refused_to_others_and_checked(app, client, campaign):  # noqa: F811
    c, ids = campaign, campaign["ids"]
    with app.app_context():
        service.set_status(db.get_session(), CID, "judging")
    good = as_scores((5, 6, 7))
    wid = ids["W1"]
    assert client.put(f"/api/works/{wid}/scores", json=good).status_code == 401
    for who in ("JX", ):
        r = put(client, c["jurors"][who], wid, good)
        assert r.status_code == 403
        assert "other-city" in r.get_json()["error"]
    for token in (c["manager"], c["admin"]):
        r = put(client, token, wid, good)
        assert r.status_code == 403, r.get_json()
    # another campaign's juror sees nothing of this one
    assert client.get(f"/api/judging/{CID}/works",
                      headers=bearer(c["jurors"]["JX"])).status_code == 403
    assert client.get(f"/api/works/{wid}/scores",
                      headers=bearer(c["jurors"]["JX"])).status_code == 403
    assert client.get(f"/api/judging/{CID}/works",
                      headers=bearer(c["manager"])).status_code == 403
    j1 = c["jurors"]["J1"]
    for body, param in (({"creativity": 5, "expression": 6}, "city"),
                        ({**good, "expression": 11}, "expression"),
                        ({**good, "creativity": "ten"}, "creativity"),
                        ({**good, "city": True}, "city"),
                        ({**good, "colour": 3}, "colour")):
        r = put(client, j1, wid, body)
        assert r.status_code == 400, body
        assert r.get_json()["param"] == param
        assert param in r.get_json()["error"]
    assert put(client, j1, wid, [1, 2, 3]).status_code == 400
    # a juror is no reviewer, and no manager of venues
    assert client.get("/api/works/review", headers=bearer(j1)).status_code == 403
    def count() -> int:
        with app.app_context():
            return db.get_session().execute(select(func.count()).select_from(Score)
                                            ).scalar_one()

    assert count() == 0  # nothing refused was stored
    # erasing a work (a guardian's withdrawal, an administrator) takes its scores with it
    assert put(client, j1, wid, good).status_code == 200
    assert count() == 1
    assert client.delete(f"/api/works/{wid}", headers=bearer(c["admin"])).status_code == 204
    assert count() == 0


def test_criteria_are_set_at_creation_and_fixed_once_scored(app, client, runner,  # noqa: F811
                                                            campaign):
    c, ids = campaign, campaign["ids"]
    r = runner.invoke("campaign", "create", "next", "--title-zh", "明年", "--title-en",
                      "Next", "--opens", "2027-03-01", "--closes", "2027-04-01",
                      "--criteria", "creativity:50,city:50")
    assert r.exit_code == 0 and "creativity:50,city:50" in r.output
    bad = runner.invoke("campaign", "create", "bad", "--title-zh", "坏", "--title-en", "Bad",
                        "--opens", "2027-03-01", "--closes", "2027-04-01",
                        "--criteria", "creativity:0")
    assert bad.exit_code != 0 and "creativity" in bad.output
    runner.invoke("campaign", "set-status", CID, "judging")
    r = runner.invoke("campaign", "configure", CID, "--criteria", "creativity:50,city:50",
                      "--min-jurors", "3")
    assert r.exit_code == 0, r.output
    assert put(client, c["jurors"]["J1"], ids["W1"],
               {"creativity": 8, "city": 6}).get_json()["weighted"] == pytest.approx(7.0)
    r = runner.invoke("campaign", "configure", CID, "--criteria", "creativity:10,city:90")
    assert r.exit_code != 0 and "scored" in r.output


def test_pending_works_are_judged_only_if_the_organisers_allow(app, client, runner,  # noqa: F811
                                                               campaign):
    c = campaign
    open_campaign(app, "third")
    j = juror(runner, "Third juror", "third")
    wid = post(client, cid="third", **CHILDREN["W2"]).get_json()["id"]
    runner.invoke("campaign", "set-status", "third", "judging")
    assert client.get("/api/judging/third/works", headers=bearer(j)).get_json()["total"] == 0
    assert runner.invoke("campaign", "configure", "third", "--judge-pending").exit_code == 0
    listed = client.get("/api/judging/third/works", headers=bearer(j)).get_json()
    assert [w["id"] for w in listed["works"]] == [wid]
    assert c["admin"]


def test_nothing_a_juror_can_fetch_names_the_child(app, client, campaign):  # noqa: F811
    """Blindness: every response a juror can reach (API, judging pages, files) is searched
    for the children's names, districts and guardians' names and contacts."""
    c = campaign
    with app.app_context():
        service.set_status(db.get_session(), CID, "judging")
    j1 = c["jurors"]["J1"]
    seen: list[bytes] = []

    def fetch(method, url, **kw):
        r = client.open(url, method=method, **kw)
        assert r.status_code < 500
        seen.append(r.get_data())
        return r

    listed = fetch("GET", f"/api/judging/{CID}/works", headers=bearer(j1)).get_json()
    assert listed["works"]
    for w in listed["works"]:
        assert set(w) == {"id", "kind", "age_group", "title", "story", "thumb_url",
                          "display_url", "audio_url", "width", "height", "duration_ms",
                          "my_scores"}
        fetch("PUT", f"/api/works/{w['id']}/scores", json=as_scores((5, 5, 5)),
              headers=bearer(j1))
        fetch("GET", f"/api/works/{w['id']}/scores", headers=bearer(j1))
        for url in (w["thumb_url"], w["display_url"], w["audio_url"]):
            if url:
                r = fetch("GET", url, headers=bearer(j1))
                assert r.status_code == 200
                assert b"Exif" not in r.get_data()
    # the same files are refused to the public and to another campaign's juror
    painting = next(w for w in listed["works"] if w["display_url"])
    assert client.get(painting["display_url"]).status_code == 401
    assert client.get(painting["display_url"],
                      headers=bearer(c["jurors"]["JX"])).status_code == 403
    # the judging page, signed in as the juror, for every work
    r = client.post("/manage/signin", data={"token": j1, "csrf": csrf(client)})
    assert r.status_code == 302
    fetch("GET", "/manage/judging?lang=en")  # the language, kept in the session
    index = fetch("GET", "/manage/", follow_redirects=True)
    assert "6 of 6 scored" in index.get_data(as_text=True)
    for w in listed["works"]:
        fetch("GET", f"/manage/judging?work={w['id']}")
    fetch("GET", painting["display_url"])  # the page's image, by the session
    # the juror cannot open the review queue or the results
    assert client.get("/manage/works").status_code == 403
    assert client.get(f"/manage/campaigns/{CID}/results").status_code == 403
    everything = b"\n".join(seen).decode("utf-8", "replace")
    assert CHILDREN["W1"]["title"] in everything  # the search does see the pages
    for secret in SECRETS:
        assert secret not in everything, secret
    assert '"narrator_age"' not in everything


def test_the_judging_page_saves_and_moves_on(app, client, campaign):  # noqa: F811
    c, ids = campaign, campaign["ids"]
    with app.app_context():
        service.set_status(db.get_session(), CID, "judging")
    r = client.post("/manage/signin", data={"token": c["jurors"]["J2"], "csrf": csrf(client)})
    assert r.status_code == 302
    page = client.get("/manage/judging?lang=en").get_data(as_text=True)
    assert "0 of 6 scored" in page
    first = re.search(r'data-work="([^"]+)"', page).group(1)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = client.post(f"/manage/judging/{first}", data={"csrf": token, "creativity": "7",
                                                      "expression": "8", "city": "9"})
    assert r.status_code == 303
    nxt = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "1 of 6 scored" in nxt
    assert f'data-work="{first}"' not in nxt
    # a missing criterion: the page says which
    r = client.post(f"/manage/judging/{first}", data={"csrf": token, "creativity": "7"},
                    follow_redirects=True)
    assert "Score Expression: every criterion must be scored." in r.get_data(as_text=True)
    assert ids


def test_administrators_see_results_and_give_awards_in_manage(app, client, campaign):  # noqa: F811
    c, ids = campaign, campaign["ids"]
    with app.app_context():
        service.set_status(db.get_session(), CID, "judging")
    score_all(client, c)
    r = client.post("/manage/signin", data={"token": c["admin"], "csrf": csrf(client)})
    assert r.status_code == 302
    page = client.get(f"/manage/campaigns/{CID}/results?lang=en").get_data(as_text=True)
    assert "7.97" in page and "too few jurors" in page
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = client.post(f"/manage/campaigns/{CID}/award", data={"csrf": token, "work": ids["W2"],
                                                            "award": "bronze"})
    assert r.status_code == 303
    csv_body = client.get(f"/manage/campaigns/{CID}/results.csv").get_data()
    assert csv_body.startswith(b"\xef\xbb\xbf")
    assert client.post(f"/manage/campaigns/{CID}/publish",
                       data={"csrf": token}).status_code == 303
    res = client.get(f"/api/campaigns/{CID}/results").get_json()
    assert res["groups"][0]["winners"][0]["award"] == "bronze"
    table = client.get(f"/api/campaigns/{CID}/ranking", headers=bearer(c["admin"])).get_json()
    assert len(table["results"]) == 6
    assert client.get(f"/api/campaigns/{CID}/ranking",
                      headers=bearer(c["jurors"]["J1"])).status_code == 403
    # Reopened for judging, the results are withdrawn; closing again does not republish
    # them (the awards may have changed): only publishing does.
    with app.app_context():
        service.set_status(db.get_session(), CID, "judging")
    assert client.get(f"/api/campaigns/{CID}/results").status_code == 404
    with app.app_context():
        service.set_status(db.get_session(), CID, "closed")
    assert client.get(f"/api/campaigns/{CID}/results").status_code == 404
    assert client.get(f"/campaigns/{CID}/results").status_code == 404
    assert client.post(f"/manage/campaigns/{CID}/publish",
                       data={"csrf": token}).status_code == 303
    assert client.get(f"/api/campaigns/{CID}/results").status_code == 200


# --- language ------------------------------------------------------------------------------

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff01-\uff5e]")
HTML_LANG = {"en": '<html lang="en">', "zh": '<html lang="zh-CN">'}


def interface_text(page: str, data: list[str]) -> str:
    """What a /manage page says in its own words: its text and its controls' labels
    (aria-label, title, placeholder), less the language switch (which names the other
    language), key caps and the data (works' titles and stories, ids, names)."""
    page = re.sub(r'<a class="lang".*?</a>', " ", page, flags=re.S)
    page = re.sub(r"<(kbd|script|style)\b.*?</\1>", " ", page, flags=re.S)
    labels = re.findall(r'\s(?:aria-label|title|placeholder)="([^"]*)"', page)
    text = html.unescape(" ".join([re.sub(r"<[^>]+>", " ", page), *labels]))
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    return text


def flashes(page: str) -> str:
    return " ".join(re.findall(r'<p class="flash [^"]*"[^>]*>(.*?)</p>', page, flags=re.S))


def only_language(lang: str, page: str, data: list[str], whole: bool = True) -> None:
    """The page (or a part of it) is in ``lang`` only: no Chinese in English, no English
    word in Chinese (but the file format CSV)."""
    assert not whole or HTML_LANG[lang] in page
    text = interface_text(page, data)
    if lang == "en":
        assert not CJK.search(text), CJK.findall(text)
    else:
        english = re.compile(r"\b(?!CSV\b)[A-Za-z]{3,}")
        assert not english.search(text), english.findall(text)


def test_the_judging_pages_in_manage_speak_the_page_language_only(app, client,  # noqa: F811
                                                                  campaign):
    """The juror's page, the results table, their messages, statuses, awards and criteria
    in ?lang=en carry no Chinese interface text and in ?lang=zh no English (the works'
    titles and stories, ids and names are data); a campaign's own criterion shows its
    id."""
    c, ids = campaign, campaign["ids"]
    data = [*ids.values(), CID, "Juror J3", "Admin", "colour"]
    data += [v for f in CHILDREN.values() for k, v in f.items() if k == "title"]
    data += [f"About {f['title'].lower()}: we walk there on Sundays." for f in CHILDREN.values()]
    juror_client = app.test_client()
    r = juror_client.post("/manage/signin", data={"token": c["jurors"]["J3"],
                                                  "csrf": csrf(juror_client)})
    assert r.status_code == 302
    r = client.post("/manage/signin", data={"token": c["admin"], "csrf": csrf(client)})
    assert r.status_code == 302
    token = csrf(client)

    def admin_post(path, lang, **form):
        client.get(f"/manage/campaigns?lang={lang}")  # the session keeps the language
        page = client.post(path, data={"csrf": token, **form}, follow_redirects=True)
        assert page.status_code == 200
        return page.get_data(as_text=True)

    # before judging: no awards yet, in the page's language
    for lang, said in (("en", "Awards are given once judging has begun (the campaign is "
                               "open)."), ("zh", "评选开始后才能颁奖（活动状态：进行中）。")):
        page = admin_post(f"/manage/campaigns/{CID}/award", lang, work=ids["W1"], award="gold")
        assert said in flashes(page)
        only_language(lang, page, data)
    with app.app_context():
        service.set_status(db.get_session(), CID, "judging")

    # a juror's /manage?lang= keeps the language across the redirect to the judging page
    for lang, word in (("en", "Keyboard shortcuts"), ("zh", "键盘快捷键")):
        r = juror_client.get(f"/manage/?lang={lang}")
        assert r.status_code == 302
        assert word in juror_client.get(r.headers["Location"]).get_data(as_text=True)

    # a campaign's own criterion shows its id; the default ones their labels
    for lang, saved, labels in (
            ("en", f"Campaign {CID}: judging settings saved.", ["Creativity", "colour"]),
            ("zh", f"征集活动 {CID}：评审设置已保存。", ["创意", "colour"])):
        page = admin_post(f"/manage/campaigns/{CID}/judging", lang,
                          criteria="creativity:50,colour:50", award_plan="gold:1,merit:2",
                          min_jurors="2")
        assert saved in flashes(page)
        page = juror_client.get(f"/manage/judging?lang={lang}").get_data(as_text=True)
        legends = [re.sub(r"<[^>]+>", "", x).split("·")[0].strip()
                   for x in re.findall(r"<legend>(.*?)</legend>", page, flags=re.S)]
        assert legends == labels
        only_language(lang, page, data)
    admin_post(f"/manage/campaigns/{CID}/judging", "en",
               criteria="creativity:40,expression:30,city:30",
               award_plan="gold:1,silver:1,bronze:1")

    # the juror's page, its refusal and its saving
    score_all(client, c)  # J3 scores only W1
    for lang, words in (("en", ["1 of 6 scored", "Expression", "Connection to the city",
                                "Save and next", "Keyboard shortcuts", "weight 40"]),
                        ("zh", ["已评 1 / 6", "表达", "与城市的联系", "保存并继续", "键盘快捷键",
                                "权重 40"])):
        page = juror_client.get(f"/manage/judging?lang={lang}").get_data(as_text=True)
        assert all(w in page for w in words), lang
        only_language(lang, page, data)
        for key in ("W1", "P1"):  # scored; a painting
            page = juror_client.get(f"/manage/judging?work={ids[key]}").get_data(as_text=True)
            assert ("scored" if lang == "en" else "已评") in page
            only_language(lang, page, data)
        post_token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        page = juror_client.post(f"/manage/judging/{ids['W2']}", follow_redirects=True, data={
            "csrf": post_token, "creativity": "7", "city": "12"}).get_data(as_text=True)
        assert flashes(page) == ("Score Expression: every criterion must be scored."
                                 if lang == "en" else "请为“表达”打分：每项标准都要打分。")
        only_language(lang, page, data)
        page = juror_client.post(f"/manage/judging/{ids['W2']}", follow_redirects=True, data={
            "csrf": post_token, "creativity": "7", "expression": "8", "city": "12"}
        ).get_data(as_text=True)
        assert flashes(page) == ("The score for Connection to the city must be a number "
                                 "from 0 to 10." if lang == "en"
                                 else "“与城市的联系”的分数必须是 0 到 10 之间的数字。")
        only_language(lang, page, data)
    page = juror_client.post(f"/manage/judging/{ids['W2']}", follow_redirects=True, data={
        "csrf": post_token, "creativity": "7", "expression": "8", "city": "9"}
    ).get_data(as_text=True)
    assert flashes(page) == "已保存 · 已评 2 / 6"
    only_language("zh", page, data)

    # the results table, the awards and their messages
    for lang, words in (
            ("en", ["Results: Me and my city", "too few jurors", "not public", "flagged",
                    "Creativity 40, Expression 30, Connection to the city 30",
                    "Gold award × 1, Silver award × 1, Bronze award × 1", "Spread",
                    ">Merit award</option>", "Writing · ages 7-9"]),
            ("zh", ["评审结果：我和我的城市", "评委不足", "不公开", "有个人信息",
                    "创意 40、表达 30、与城市的联系 30", "金奖 1 名、银奖 1 名、铜奖 1 名", "分差",
                    ">优秀奖</option>", "写作 · 7-9岁组"])):
        page = client.get(f"/manage/campaigns/{CID}/results?lang={lang}").get_data(
            as_text=True)
        assert all(w in page for w in words), [w for w in words if w not in page]
        only_language(lang, page, data)
    results = f"/manage/campaigns/{CID}"
    for lang, said in (("en", [f"Work {ids['W2']}: Bronze award.",
                               "5 awards given by the plan.",
                               "Choose an award: Gold award, Silver award, Bronze award, "
                               "Merit award, or none.",
                               "The criteria cannot change once works have been scored."]),
                       ("zh", [f"作品 {ids['W2']}：铜奖。", "已按方案颁发 5 个奖项。",
                               "请选择奖项：金奖、银奖、铜奖、优秀奖，或不设奖项。",
                               "已有作品评分，评审标准不能再改。"])):
        pages = [admin_post(f"{results}/award", lang, work=ids["W2"], award="bronze"),
                 admin_post(f"{results}/autoaward", lang),
                 admin_post(f"{results}/award", lang, work=ids["W2"], award="platinum"),
                 admin_post(f"{results}/judging", lang, criteria="creativity:1")]
        for page, message in zip(pages, said, strict=True):
            assert flashes(page) == message
            only_language(lang, flashes(page), data, whole=False)
    page = admin_post(f"{results}/publish", "zh")
    assert flashes(page) == f"{CID} 的评选结果已公布，活动已结束。"
    page = client.get(f"/manage/campaigns/{CID}/results?lang=en").get_data(as_text=True)
    assert f'href="/campaigns/{CID}/results?lang=en">Public results</a>' in page
    only_language("en", page, data)
    # a closed campaign: the juror is told, in their language
    for lang, said in (("en", "Scores are not taken now (the campaign is closed)"),
                       ("zh", "现在不接受评分（活动状态：已截止）")):
        page = juror_client.get(f"/manage/judging?lang={lang}").get_data(as_text=True)
        assert said in page
        only_language(lang, page, data)
