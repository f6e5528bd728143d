"""Save a venue for offline in a real headless Chromium: the service worker, Cache Storage,
playing a saved MP3 with no signal (Range requests answered from the cache), the play beacon
kept until the phone is online, and a withdrawn clip dropped from the phone once online.

The app runs in a thread on 127.0.0.1 (a secure context, so service workers work). A WSGI
wrapper records every request the server answers, so that "offline" is proved by the server
seeing nothing, not only by Playwright's network emulation."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from axe import AXE, TAGS
from helpers import feature, load, published_clip
from sqlalchemy import select

from voicemap import clips, create_app, db
from voicemap.models import PlayCount
from voicemap.storage import media_store

pytest.importorskip("playwright.sync_api")

SHOTS = Path(__file__).resolve().parent.parent / "test-output" / "screenshots"
# The registry's longest real names (data/venues.geojson), in both languages.
NAME_EN = "The Palace Museum (Forbidden City) Children's Education Centre"
NAME_ZH = "故宫博物院（紫禁城）儿童教育中心"


class Recorder:
    """WSGI middleware: the paths the server was asked for, while ``recording``."""

    def __init__(self, app) -> None:
        self.app = app
        self.seen: list[str] = []
        self.recording = False
        self.down = False  # answer 503 to everything, as a server in trouble would
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if self.recording:
            with self.lock:
                self.seen.append(environ.get("PATH_INFO", ""))
        if self.down:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"down"]
        inner = self.app(environ, start_response)

        def body():
            try:
                yield from inner
            finally:
                if hasattr(inner, "close"):
                    inner.close()
        return body()


@pytest.fixture(scope="module")
def offline_site(tmp_path_factory):
    from werkzeug.serving import WSGIRequestHandler, make_server

    base = tmp_path_factory.mktemp("offline")
    app = create_app({"DATABASE_URL": f"sqlite:///{base / 'voicemap.sqlite'}",
                      "MEDIA_DIR": str(base / "media"), "SECRET_KEY": "offline-test",
                      # a tile server that refuses at once: no request leaves the machine
                      "TILE_URL": "http://127.0.0.1:9/{z}/{x}/{y}.png"})
    db.init_schema(app.extensions["voicemap.engine"])
    load(app, [feature("palace", 116.397, 39.918, name_en=NAME_EN, name_zh=NAME_ZH)])
    zh = published_clip(app, "palace", lang="zh")
    en = published_clip(app, "palace", lang="en")

    class Quiet(WSGIRequestHandler):
        def log(self, *args, **kwargs) -> None:
            pass

    recorder = Recorder(app)
    server = make_server("127.0.0.1", 0, recorder, threaded=True, request_handler=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "app": app, "recorder": recorder,
           "clips": [zh, en]}
    server.shutdown()
    app.extensions["voicemap.engine"].dispose()


def audit_offline_box(page) -> list[str]:
    """axe-core (WCAG 2.x A/AA and best practices) on the offline box only: the rest of the
    venue page belongs to other work and is audited there."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Through DevTools, not a <script> tag: the page's CSP (kept on, and tested) would
        # refuse an inline script.
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
    result = page.evaluate("""(tags) => axe.run({include: [['#vm-offline']]},
        {runOnly: {type: 'tag', values: tags}})""", TAGS)
    assert "button-name" in {p["id"] for p in result["passes"]}  # it did look at the button
    return [f"{v['id']}: {v['help']}" for v in result["violations"]]


CACHE_STATE = """async () => {
  const out = {};
  for (const name of await caches.keys()) {
    const c = await caches.open(name);
    out[name] = (await c.keys()).map(r => new URL(r.url).pathname + new URL(r.url).search);
  }
  return out;
}"""


def plays(app) -> dict[str, int]:
    with app.app_context():
        rows = db.get_session().execute(select(PlayCount.clip_id, PlayCount.count)).all()
    return {c: n for c, n in rows}


def test_save_listen_offline_withdraw_and_remove(browser, offline_site):
    url, app, rec = offline_site["url"], offline_site["app"], offline_site["recorder"]
    zh, en = offline_site["clips"]
    ctx = browser.new_context(viewport={"width": 360, "height": 740}, locale="en-US",
                              is_mobile=True, has_touch=True)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security" in m.text else None)
    try:
        page.goto(f"{url}/venues/palace?lang=en")
        button = page.locator("#vm-offline button")
        button.wait_for(state="visible")
        assert button.inner_text().strip() == "Save for offline"
        assert button.bounding_box()["height"] >= 44
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert audit_offline_box(page) == []
        # A play online is counted once per page view, however often it is played.
        played_online = page.evaluate("""async (id) => {
          const a = document.querySelector('[data-clip="' + id + '"] audio');
          a.muted = true;
          for (let i = 0; i < 2; i++) {
            a.currentTime = 0;
            await a.play();
            await new Promise(r => setTimeout(r, 300));
            a.pause();
          }
          return a.currentTime;
        }""", en["id"])
        assert played_online > 0
        for _ in range(50):
            if plays(app).get(en["id"]):
                break
            page.wait_for_timeout(100)
        page.wait_for_timeout(300)
        assert plays(app) == {en["id"]: 1}
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        button.click()
        page.wait_for_selector("#vm-offline[data-saved=true]")
        state_text = page.locator(".vm-off-state").inner_text()
        assert state_text.startswith("Saved for offline (")
        assert state_text.endswith((" KB)", " MB)"))
        assert button.inner_text().strip() == "Remove saved guides"
        assert audit_offline_box(page) == []
        saved = page.evaluate(CACHE_STATE)
        assert list(saved) == ["vm-offline-palace"]  # one venue's cache, nothing else
        keys = saved["vm-offline-palace"]
        assert "/venues/palace?lang=en" in keys and "/venues/palace" in keys
        assert f"/audio/{zh['id']}.mp3" in keys and f"/audio/{en['id']}.mp3" in keys
        assert all(k.startswith(("/venues/palace", "/audio/", "/assets/", "/__vm_offline__/"))
                   for k in keys), keys
        assert not any("/qr." in k or "/api/" in k for k in keys)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "offline-saved-360.png"), full_page=True)

        # No signal: the page and its audio come from the phone, the server sees nothing.
        page.reload()  # now controlled by the worker
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        ctx.set_offline(True)
        rec.seen.clear()
        rec.recording = True
        page.reload()
        assert page.locator("h1").inner_text().startswith(NAME_EN[:20])
        got = page.evaluate("""async (id) => {
          const part = await fetch('/audio/' + id + '.mp3', {headers: {Range: 'bytes=0-99'}});
          const whole = await fetch('/audio/' + id + '.mp3');
          const tail = await fetch('/audio/' + id + '.mp3', {headers: {Range: 'bytes=-10'}});
          return {partStatus: part.status, partLen: (await part.arrayBuffer()).byteLength,
                  range: part.headers.get('Content-Range'), wholeStatus: whole.status,
                  wholeLen: (await whole.arrayBuffer()).byteLength,
                  tailRange: tail.headers.get('Content-Range')};
        }""", zh["id"])
        assert got["partStatus"] == 206 and got["partLen"] == 100
        assert got["wholeStatus"] == 200 and got["wholeLen"] > 1000
        assert got["range"] == f"bytes 0-99/{got['wholeLen']}"
        assert got["tailRange"] == f"bytes {got['wholeLen'] - 10}-{got['wholeLen'] - 1}/" \
            f"{got['wholeLen']}"
        played = page.evaluate("""async (id) => {
          const a = document.querySelector('[data-clip="' + id + '"] audio');
          a.muted = true;
          await a.play();
          await new Promise(r => setTimeout(r, 600));
          a.pause();
          return {ready: a.readyState, duration: a.duration, time: a.currentTime,
                  pending: JSON.parse(localStorage.getItem('vm-plays-pending') || '{}')};
        }""", zh["id"])
        assert played["ready"] >= 2 and played["duration"] > 1 and played["time"] > 0.1
        assert abs(played["duration"] * 1000 - zh["duration_ms"]) < 300
        assert played["pending"] == {zh["id"]: 1}  # the beacon waits for a signal
        assert "no signal" not in page.locator(".vm-off-note").inner_text()
        page.screenshot(path=str(SHOTS / "offline-offline-360.png"), full_page=True)
        rec.recording = False
        assert rec.seen == [], f"the server was asked while offline: {rec.seen}"

        # A signal but the server in trouble (503): the saved page rather than the error;
        # the remembered play is not lost to the 503.
        before = plays(app).get(zh["id"], 0)
        ctx.set_offline(False)
        rec.down = True
        page.reload()
        assert page.locator("h1").inner_text().startswith(NAME_EN[:20])
        rec.down = False

        # Back online: the remembered play is sent.
        page.evaluate("window.dispatchEvent(new Event('online'))")
        page.wait_for_function("localStorage.getItem('vm-plays-pending') === null")
        for _ in range(50):
            if plays(app).get(zh["id"], 0) > before:
                break
            page.wait_for_timeout(100)
        page.wait_for_timeout(300)
        assert plays(app).get(zh["id"], 0) == before + 1  # once, not lost, not twice

        # Consent withdrawn on the server: the next online load drops the clip from the phone.
        with app.app_context():
            clips.delete(db.get_session(), media_store(), en["id"], None)
        page.reload()
        page.wait_for_selector("html[data-vm-offline-checked='1']")
        keys = page.evaluate(CACHE_STATE)["vm-offline-palace"]
        assert f"/audio/{en['id']}.mp3" not in keys
        assert f"/audio/{zh['id']}.mp3" in keys
        saved_page = page.evaluate("""async () => {
          const c = await caches.open('vm-offline-palace');
          return (await c.match('/venues/palace?lang=en')).text();
        }""")
        assert en["id"] not in saved_page and zh["id"] in saved_page  # its transcript too
        meta = json.loads(page.evaluate("""async () => {
          const c = await caches.open('vm-offline-palace');
          return (await c.match('/__vm_offline__/meta')).text();
        }"""))
        assert sorted(meta["clips"]) == [zh["id"]]
        # The re-saved page still works with no signal: its styles and scripts came along.
        ctx.set_offline(True)
        page.reload()
        assert page.locator("h1").inner_text().startswith(NAME_EN[:20])
        page.wait_for_selector("#vm-venue-map.leaflet-container")  # venue.js and Leaflet ran
        assert page.evaluate("document.styleSheets.length") >= 4
        assert page.locator(f'[data-clip="{en["id"]}"]').count() == 0
        ctx.set_offline(False)

        # The other clip withdrawn too, and the family opens only the map: the worker checks
        # the saved venues on any page load, and drops it.
        with app.app_context():
            clips.delete(db.get_session(), media_store(), zh["id"], None)
        page.goto(f"{url}/?lang=en")
        page.wait_for_function("""async (id) => {
          const c = await caches.open('vm-offline-palace');
          return !(await c.match('/audio/' + id + '.mp3'));
        }""", arg=zh["id"], timeout=15000)
        assert "vm-offline-palace" in page.evaluate(CACHE_STATE)  # the venue stays saved

        # Remove: nothing stays.
        page.goto(f"{url}/venues/palace?lang=en")
        button.wait_for(state="visible")
        page.wait_for_selector("#vm-offline[data-saved=true]")
        button.click()
        page.wait_for_selector("#vm-offline[data-saved=false]")
        assert page.evaluate(CACHE_STATE) == {}
        assert button.inner_text().strip() == "Save for offline"
        assert errors == []
    finally:
        ctx.close()


def test_chinese_page_and_320px(browser, offline_site):
    ctx = browser.new_context(viewport={"width": 320, "height": 568}, locale="zh-CN",
                              is_mobile=True, has_touch=True)
    page = ctx.new_page()
    try:
        page.goto(f"{offline_site['url']}/venues/palace?lang=zh")
        button = page.locator("#vm-offline button")
        button.wait_for(state="visible")
        assert button.inner_text().strip() == "保存离线收听"
        assert page.evaluate("document.documentElement.scrollWidth") <= 320
        assert button.bounding_box()["height"] >= 44
        assert audit_offline_box(page) == []
        assert page.evaluate("document.querySelector('link[rel=manifest]').href") \
            .endswith("/manifest.webmanifest?lang=zh")
        page.screenshot(path=str(SHOTS / "offline-zh-320.png"), full_page=True)
    finally:
        ctx.close()


def test_no_service_worker_no_button(browser, offline_site):
    # As in an in-app browser without service workers: the button stays hidden.
    ctx = browser.new_context(service_workers="block")
    page = ctx.new_page()
    try:
        page.add_init_script("delete Navigator.prototype.serviceWorker;")
        page.goto(f"{offline_site['url']}/venues/palace?lang=en")
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)
        assert page.evaluate("'serviceWorker' in navigator") is False
        assert page.locator("#vm-offline").is_hidden()
    finally:
        ctx.close()
