"""Failures answer JSON with the right status and leave nothing half-done: a database that
goes away or is locked by a long writer, a full media disk, forged Host headers, revoked
tokens, uploads abandoned by a killed worker."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from helpers import ROOT_DATA, feature, load, random_features, speech, write
from sqlalchemy import func, select

from voicemap import auth, create_app, db
from voicemap.models import Clip

ROOT = Path(__file__).resolve().parent.parent


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def form(path: Path, **extra) -> dict:
    return {"file": (io.BytesIO(path.read_bytes()), path.name), "lang": "en",
            "narrator_name": "Lily", "narrator_age": "9", "transcript": "Welcome.",
            "consent": "true", "consent_by": "Mei Wang (mother)", **extra}


def media_files(media: Path) -> list[Path]:
    return sorted(p for p in media.rglob("*") if p.is_file() and "locks" not in p.parts)


def clip_count(app) -> int:
    with app.app_context():
        return db.get_session().execute(select(func.count()).select_from(Clip)).scalar_one()


def manager_token(app, venue: str = "museum-a", admin: bool = False) -> str:
    with app.app_context(), db.session_scope() as s:
        return auth.create_manager(s, f"M{uuid.uuid4().hex[:6]}", [] if admin else [venue],
                                   admin=admin)[1]


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The real ``voicemap`` command in a process of its own."""
    return subprocess.run([sys.executable, "-c", "from voicemap.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, **env})


def assert_one_line_message(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


# --- a PostgreSQL cluster of the test's own, stopped and started ---------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def own_cluster():
    """A PostgreSQL 15 cluster this module may stop and start (never the shared one)."""
    version = sorted(os.listdir("/etc/postgresql"), key=float)[-1]
    name, port = f"vmtest{uuid.uuid4().hex[:8]}", _free_port()
    subprocess.run(["pg_createcluster", version, name, "--port", str(port), "--",
                    "--auth-local=trust", "--auth-host=trust"], check=True, capture_output=True)
    ctl = ["pg_ctlcluster", "--skip-systemctl-redirect", version, name]
    try:
        subprocess.run([*ctl, "start"], check=True, capture_output=True)
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE voicemap")
        yield {"url": f"postgresql+psycopg://postgres@127.0.0.1:{port}/voicemap",
               "stop": lambda: subprocess.run([*ctl, "stop", "-m", "fast"], check=True,
                                              capture_output=True),
               "start": lambda: subprocess.run([*ctl, "start"], check=True,
                                               capture_output=True)}
    finally:
        subprocess.run(["pg_dropcluster", version, name, "--stop"], capture_output=True)


def test_postgresql_outage_answers_503_json_and_recovers_by_itself(own_cluster, tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": own_cluster["url"],
                      "MEDIA_DIR": str(tmp_path / "media"), "SECRET_KEY": "t"})
    db.init_schema(app.extensions["voicemap.engine"])
    load(app, [feature("museum-a", 116.39, 39.91), feature("park-b", 116.40, 39.95, "park")])
    client = app.test_client()
    paths = ["/api/nearest?lat=39.9&lon=116.4", "/api/venues", "/api/venues/museum-a",
             "/api/categories", "/api/venues/museum-a/clips", "/api/map/venues?bbox=116,39,117,41"]
    for path in paths:  # warm the pool: stale connections are what an outage leaves
        assert client.get(path).status_code == 200, path
    own_cluster["stop"]()
    try:
        for path in paths:
            r = client.get(path)
            assert r.status_code == 503, (path, r.status_code, r.data[:200])
            assert r.is_json, path
            assert r.get_json()["code"] == "unavailable", path
            assert int(r.headers["Retry-After"]) > 0
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.get_json()["database"] == "unreachable"
        page = client.get("/venues/museum-a")
        assert page.status_code == 503
        assert b"Traceback" not in page.data
    finally:
        own_cluster["start"]()
    for path in paths:  # the first requests after the restart succeed
        assert client.get(path).status_code == 200, path
    assert client.get("/healthz").get_json()["status"] == "ok"
    app.extensions["voicemap.engine"].dispose()


# --- SQLite: a long writer, and concurrent writers -------------------------------------------


@pytest.fixture
def sqlite_app(tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'vm.sqlite'}",
                      "MEDIA_DIR": str(tmp_path / "media"), "SECRET_KEY": "t",
                      "SQLITE_BUSY_TIMEOUT_MS": 400})
    db.init_schema(app.extensions["voicemap.engine"])
    load(app, [feature("museum-a", 116.39, 39.91)])
    yield app
    app.extensions["voicemap.engine"].dispose()


HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.read()
conn.rollback()
"""


class WriteLock:
    """Another process's long write transaction (an import), as SQLite sees it. (In this
    process it would not count: SQLite's POSIX locks do not exclude the same process.)"""

    def __init__(self, path: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, path], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout.readline().strip() == "held"

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(10)
        self.proc.stdout.close()


def hold_write_lock(path: str) -> WriteLock:
    return WriteLock(path)


def test_upload_while_the_database_is_locked_is_503_and_stores_nothing(sqlite_app, tmp_path,
                                                                      monkeypatch, caplog):
    from voicemap import audio

    token = manager_token(sqlite_app)
    db_path = sqlite_app.config["DATABASE_URL"].removeprefix("sqlite:///")
    held: list[WriteLock] = []
    real_process = audio.process

    def process_then_lock(*args, **kwargs):
        # The import starts while the upload is being processed, and outlasts the wait.
        result = real_process(*args, **kwargs)
        held.append(hold_write_lock(db_path))
        return result

    monkeypatch.setattr(audio, "process", process_then_lock)
    client = sqlite_app.test_client()
    try:
        r = client.post("/api/venues/museum-a/clips", headers=bearer(token),
                        data=form(speech(tmp_path / "a", "g.m4a")))
    finally:
        for lock in held:
            lock.release()
    assert r.status_code == 503, r.data[:300]
    assert r.get_json()["code"] == "busy"
    assert int(r.headers["Retry-After"]) > 0
    # The failed INSERT's values (the guardian's name, the transcript) stay out of the log.
    assert "locked" in caplog.text
    assert "Mei Wang" not in caplog.text
    assert "Mei Wang" not in r.get_data(as_text=True)
    assert clip_count(sqlite_app) == 0
    assert media_files(Path(sqlite_app.config["MEDIA_DIR"])) == []  # no file left behind


def test_a_writer_that_waits_less_than_the_timeout_succeeds(sqlite_app, tmp_path):
    token = manager_token(sqlite_app)
    db_path = sqlite_app.config["DATABASE_URL"].removeprefix("sqlite:///")
    sqlite_app.config["SQLITE_BUSY_TIMEOUT_MS"] = 400
    lock = hold_write_lock(db_path)
    threading.Timer(0.15, lock.release).start()
    r = sqlite_app.test_client().post("/api/venues/museum-a/clips", headers=bearer(token),
                                      data=form(speech(tmp_path / "a", "g.m4a")))
    assert r.status_code == 201, r.get_json()


def test_cli_import_while_locked_is_a_one_line_message(sqlite_app, tmp_path):
    db_path = sqlite_app.config["DATABASE_URL"].removeprefix("sqlite:///")
    lock = hold_write_lock(db_path)
    try:
        result = cli("import", str(ROOT_DATA),
                     env={"VOICEMAP_DATABASE_URL": sqlite_app.config["DATABASE_URL"],
                          "VOICEMAP_MEDIA_DIR": str(tmp_path / "media"),
                          "VOICEMAP_SQLITE_BUSY_TIMEOUT_MS": "300"})
    finally:
        lock.release()
    assert_one_line_message(result, "busy", "try again")
    with sqlite_app.app_context():  # nothing of the file was written
        assert db.get_session().execute(select(func.count()).select_from(
            __import__("voicemap.models", fromlist=["Venue"]).Venue)).scalar_one() == 1


def test_an_import_and_uploads_at_the_same_time_both_succeed(sqlite_app, tmp_path):
    """Writers queue for SQLite's write lock instead of failing: a 20,000-venue import in
    another process and three uploads meanwhile."""
    token = manager_token(sqlite_app)
    big = write(tmp_path / "big.geojson", random_features(20_000, seed=7))
    env = {"VOICEMAP_DATABASE_URL": sqlite_app.config["DATABASE_URL"],
           "VOICEMAP_MEDIA_DIR": str(tmp_path / "media")}
    recording = speech(tmp_path / "a", "g.m4a")
    # The uploads' app waits for the lock as long as a server would (the fixture's app gives
    # up after 400 ms; an engine's busy timeout is fixed when it is made), and longer: one of
    # the import's batches can hold the lock for seconds on a loaded two-core machine.
    uploads = create_app({"TESTING": True, "DATABASE_URL": sqlite_app.config["DATABASE_URL"],
                          "MEDIA_DIR": str(tmp_path / "media"), "SECRET_KEY": "t",
                          "SQLITE_BUSY_TIMEOUT_MS": 60000})
    importer = subprocess.Popen(
        [sys.executable, "-c", "from voicemap.cli import main; main()", "import", str(big)],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    client = uploads.test_client()
    statuses = []
    try:
        for _ in range(3):
            r = client.post("/api/venues/museum-a/clips", headers=bearer(token),
                            data=form(recording, title=f"t{len(statuses)}"))
            statuses.append((r.status_code, r.get_json().get("error")))
    finally:
        uploads.extensions["voicemap.engine"].dispose()
    out, err = importer.communicate(timeout=300)
    assert importer.returncode == 0, err
    assert "20000 inserted" in out
    assert [s for s, _ in statuses] == [201, 201, 201], statuses
    assert clip_count(sqlite_app) == 3


# --- a full media disk -------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path):
    """A 3 MB tmpfs, filled to the last byte: the media store's disk is full."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0755", "tmpfs", str(mount)],
                   check=True)
    try:
        media = mount / "media"
        media.mkdir()
        (media / "tmp").mkdir()  # what a running store has already
        with open(mount / "filler", "wb", buffering=0) as fh:
            for size in (65536, 4096, 512, 1):  # to the last byte
                try:
                    while True:
                        fh.write(b"\0" * size)
                except OSError:
                    pass
        yield media
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_upload_to_a_full_disk_is_507_json_and_health_says_so(tmp_path, full_disk):
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'vm.sqlite'}",
                      "MEDIA_DIR": str(full_disk), "SECRET_KEY": "t"})
    db.init_schema(app.extensions["voicemap.engine"])
    load(app, [feature("museum-a", 116.39, 39.91)])
    token = manager_token(app)
    client = app.test_client()
    before = media_files(full_disk)
    r = client.post("/api/venues/museum-a/clips", headers=bearer(token),
                    data=form(speech(tmp_path / "a", "g.m4a")))
    assert r.status_code == 507, r.data[:300]
    assert r.get_json()["code"] == "insufficient_storage"
    assert clip_count(app) == 0
    assert media_files(full_disk) == before
    assert list((full_disk / "tmp").iterdir()) == []  # the scratch directory went too
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["media"] == "full"
    assert health.get_json()["database"] == "ok"
    app.extensions["voicemap.engine"].dispose()


def test_cli_on_a_full_disk_prints_one_line(tmp_path, full_disk):
    url = f"sqlite:///{tmp_path / 'vm.sqlite'}"
    app = create_app({"TESTING": True, "DATABASE_URL": url, "MEDIA_DIR": str(full_disk),
                      "SECRET_KEY": "t"})
    db.init_schema(app.extensions["voicemap.engine"])
    load(app, [feature("museum-a", 116.39, 39.91, description_zh="一座博物馆。",
                       description_en="A museum.")])
    app.extensions["voicemap.engine"].dispose()
    env = {"VOICEMAP_DATABASE_URL": url, "VOICEMAP_MEDIA_DIR": str(full_disk)}
    result = cli("add-clip", "museum-a", str(speech(tmp_path / "a", "g.m4a")), "--lang", "en",
                 "--narrator", "Lily", "--age", "9", "--transcript", "Hello",
                 "--consent-by", "Parent", env=env)
    assert_one_line_message(result, "full")
    assert_one_line_message(cli("demo-clips", "--per-category", "1", env=env), "full")


# --- hosts and proxies -------------------------------------------------------------------


def test_untrusted_host_is_refused(app, client):
    load(app, [feature("museum-a", 116.39, 39.91)])
    r = client.get("/api/venues/museum-a", headers={"Host": "evil.example"})
    assert r.status_code == 400
    assert r.is_json
    page = client.get("/venues/museum-a", headers={"Host": "evil.example"})
    assert page.status_code == 400
    assert b"evil.example" not in client.get("/venues/museum-a/qr.svg").data
    assert client.get("/venues/museum-a/qr.svg",
                      headers={"Host": "evil.example"}).status_code == 400


def test_forwarded_host_counts_only_from_a_trusted_proxy(database_url, tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "t",
                      "MEDIA_DIR": str(tmp_path / "media"),
                      "TRUSTED_HOSTS": "localhost,map.example.org"})
    db.init_schema(app.extensions["voicemap.engine"])
    load(app, [feature("museum-a", 116.39, 39.91)])
    client = app.test_client()
    forwarded = {"X-Forwarded-Host": "map.example.org", "X-Forwarded-Proto": "https"}
    via_proxy = client.get("/venues/museum-a", headers=forwarded,
                           environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert 'href="https://map.example.org/venues/museum-a"' in via_proxy.get_data(as_text=True)
    direct = client.get("/venues/museum-a", headers=forwarded,
                        environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert direct.status_code == 200
    assert "map.example.org" not in direct.get_data(as_text=True)
    spoofed = client.get("/venues/museum-a", headers={"X-Forwarded-Host": "evil.example"},
                         environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert spoofed.status_code == 400  # believed, then refused: not a trusted host
    app.extensions["voicemap.engine"].dispose()


def test_public_url_fixes_links_and_qr_codes(database_url, tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "t",
                      "MEDIA_DIR": str(tmp_path / "media"),
                      "PUBLIC_URL": "https://map.example.org"})
    db.init_schema(app.extensions["voicemap.engine"])
    load(app, [feature("museum-a", 116.39, 39.91)])
    client = app.test_client()
    svg = client.get("/venues/museum-a/qr.svg")
    assert b"https://map.example.org/venues/museum-a" in svg.data
    assert "Host" not in svg.headers.get("Vary", "")
    r = client.get("/venues/museum-a/qr.svg", headers={"Host": "map.example.org"})
    assert r.status_code == 200
    assert client.get("/api/version", headers={"Host": "other.example"}).status_code == 400
    app.extensions["voicemap.engine"].dispose()


def test_qr_code_varies_by_host_without_a_public_url(app, client):
    load(app, [feature("museum-a", 116.39, 39.91)])
    r = client.get("/venues/museum-a/qr.svg")
    assert r.status_code == 200
    assert "Host" in r.headers["Vary"]


# --- tokens ------------------------------------------------------------------------------


def test_revoked_token_stops_working_at_once_everywhere(app, client, runner):
    load(app, [feature("museum-a", 116.39, 39.91)])
    out = runner.invoke("create-manager", "Alice", "--venue", "museum-a")
    token = out.output.strip().splitlines()[-1]
    assert client.get("/api/venues/museum-a/clips", headers=bearer(token)).status_code == 200
    other = app.test_client()  # a /manage session on another device
    page = other.get("/manage/").get_data(as_text=True)
    import re
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert other.post("/manage/signin", data={"token": token, "csrf": csrf}).status_code == 302
    assert "museum-a" in other.get("/manage/").get_data(as_text=True)

    listed = runner.invoke("managers", "list")
    assert listed.exit_code == 0
    assert "Alice" in listed.output
    assert "active" in listed.output
    result = runner.invoke("managers", "revoke", "Alice")
    assert result.exit_code == 0, result.output
    r = client.get("/api/venues/museum-a/clips", headers=bearer(token))
    assert r.status_code == 401
    assert r.is_json
    assert 'name="token"' in other.get("/manage/").get_data(as_text=True)
    assert "revoked" in runner.invoke("managers", "list").output

    rotated = runner.invoke("managers", "rotate", "Alice")
    new = rotated.output.strip().splitlines()[-1]
    assert new != token
    assert new.startswith("vm_")
    assert client.get("/api/venues/museum-a/clips", headers=bearer(new)).status_code == 200
    assert client.get("/api/venues/museum-a/clips", headers=bearer(token)).status_code == 401


def test_managers_commands_name_ambiguity_and_unknowns(app, runner):
    load(app, [feature("museum-a", 116.39, 39.91)])
    runner.invoke("create-manager", "Sam", "--venue", "museum-a")
    runner.invoke("create-manager", "Sam", "--admin")
    ambiguous = runner.invoke("managers", "revoke", "Sam")
    assert ambiguous.exit_code == 1
    assert "give the id" in ambiguous.output
    missing = runner.invoke("managers", "rotate", "Nobody")
    assert missing.exit_code == 1
    assert "no manager" in missing.output


# --- temporaries: a child's unprocessed voice ----------------------------------------------


KILLED_UPLOAD = """
import os, sys, time
from voicemap.storage import MediaStore
store = MediaStore(sys.argv[1])
with store.scratch("upload-") as work:
    (work / "upload").write_bytes(b"RIFF a child's raw recording")
    print(work, flush=True)
    time.sleep(600)
"""


def test_an_upload_killed_mid_way_is_found_at_once_and_swept(app, runner, tmp_path):
    media = Path(app.config["MEDIA_DIR"])
    proc = subprocess.Popen([sys.executable, "-c", KILLED_UPLOAD, str(media)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    work = Path(proc.stdout.readline().strip())
    assert (work / "upload").exists()
    time.sleep(2.5)
    # While its process lives, it is work in progress, not an orphan.
    assert "abandoned" not in runner.invoke("fsck").output
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    report = runner.invoke("fsck")
    assert report.exit_code == 1
    assert f"abandoned temporary (an interrupted upload): {work}" in report.output
    # A worker starting up sweeps it away.
    create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"],
                "MEDIA_DIR": str(media), "SECRET_KEY": "t"}).extensions[
        "voicemap.engine"].dispose()
    assert not work.exists()
    assert "media and database agree" in runner.invoke("fsck").output


# --- the map page is the same bytes on every worker ------------------------------------------


def test_map_page_etag_is_the_same_in_every_process(database_url, tmp_path):
    script = ("import sys; from voicemap import create_app; "
              "app = create_app({'DATABASE_URL': sys.argv[1], 'SECRET_KEY': 't', "
              "'MEDIA_DIR': sys.argv[2]}); "
              "r = app.test_client().get('/?lang=zh', headers={'Accept-Encoding': 'gzip'}); "
              "print(r.headers['ETag'])")
    etags = {subprocess.run([sys.executable, "-c", script, database_url, str(tmp_path / "m")],
                            capture_output=True, text=True, cwd=ROOT, check=True
                            ).stdout.strip() for _ in range(2)}
    assert len(etags) == 1
    assert next(iter(etags))


def test_a_fault_of_ours_in_sqlite_is_a_500_not_a_503(sqlite_app):
    """Only what passes with time (a busy or absent database) asks the client to retry."""
    with sqlite_app.app_context():
        db.engine().dispose()
    from sqlalchemy import create_engine

    raw = create_engine(sqlite_app.config["DATABASE_URL"], module=db.sqlite_dbapi())
    with raw.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE venues RENAME TO venues_gone")
    raw.dispose()
    r = sqlite_app.test_client().get("/api/venues/museum-a")
    assert r.status_code == 500
    assert r.get_json()["code"] == "internal"


# --- security headers and CSRF -------------------------------------------------------------

SITE_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN",
                "Referrer-Policy": "strict-origin-when-cross-origin"}


def test_security_headers_on_pages_manage_and_the_api(app, client):
    load(app, [feature("museum-a", 116.39, 39.91)])
    token = manager_token(app)
    answers = {"/": client.get("/"), "/venues/museum-a": client.get("/venues/museum-a"),
               "/api/venues/museum-a": client.get("/api/venues/museum-a"),
               "/api/venues/museum-a/clips": client.get("/api/venues/museum-a/clips",
                                                        headers=bearer(token))}
    for path, r in answers.items():
        assert r.status_code == 200, path
        for name, value in SITE_HEADERS.items():
            assert r.headers.get(name) == value, (path, name, r.headers.get(name))
        assert "Strict-Transport-Security" not in r.headers, path  # no PUBLIC_URL, plain HTTP
    # The map page's CSP carries the hash of its inline script; the venue page the default.
    assert "script-src 'self' 'sha256-" in answers["/"].headers["Content-Security-Policy"]
    venue_csp = answers["/venues/museum-a"].headers["Content-Security-Policy"]
    assert "script-src 'self';" in venue_csp
    assert "frame-ancestors 'self'" in venue_csp
    assert "Content-Security-Policy" not in answers["/api/venues/museum-a"].headers
    manage = client.get("/manage/")
    assert manage.headers["Referrer-Policy"] == "same-origin"  # /manage's own, stricter
    assert manage.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in manage.headers["Content-Security-Policy"]
    assert manage.headers["X-Content-Type-Options"] == "nosniff"
    assert manage.headers["Cache-Control"] == "no-store"
    cookie = manage.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # SESSION_COOKIE_SECURE is off by default: HTTP works


def test_hsts_header_only_over_tls_with_an_https_public_url(database_url, tmp_path):
    def make(public: str):
        made = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "t",
                           "MEDIA_DIR": str(tmp_path / "media"), "PUBLIC_URL": public,
                           "TRUSTED_HOSTS": "*"})
        db.init_schema(made.extensions["voicemap.engine"])
        return made

    app = make("https://map.example.org")
    client = app.test_client()
    tls = client.get("/api/version", base_url="https://map.example.org")
    assert tls.headers["Strict-Transport-Security"] == "max-age=31536000"
    via_proxy = client.get("/api/version", headers={"X-Forwarded-Proto": "https"},
                           environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert "Strict-Transport-Security" in via_proxy.headers
    plain = client.get("/api/version")  # plain HTTP is served, not redirected
    assert plain.status_code == 200
    assert "Strict-Transport-Security" not in plain.headers
    forged = client.get("/api/version", headers={"X-Forwarded-Proto": "https"},
                        environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert "Strict-Transport-Security" not in forged.headers  # not from a trusted proxy
    app.extensions["voicemap.engine"].dispose()
    app = make("http://map.example.org")
    tls = app.test_client().get("/api/version", base_url="https://map.example.org")
    assert "Strict-Transport-Security" not in tls.headers
    app.extensions["voicemap.engine"].dispose()


def test_csrf_guards_manage_forms_only(app, client, tmp_path):
    import re

    load(app, [feature("museum-a", 116.39, 39.91)])
    token = manager_token(app)
    page = client.get("/manage/").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    refused = client.post("/manage/signin", data={"token": token},
                          headers={"Accept": "application/json"})
    assert refused.status_code == 400
    assert refused.get_json()["code"] == "csrf"
    # The header works as well as the form field.
    ok = client.post("/manage/signin", data={"token": token}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 302
    # Over TLS the form must also come from this site (Referer), as Flask-WTF checks.
    page = client.get("/manage/", base_url="https://localhost").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post("/manage/signout", data={"csrf": csrf}, base_url="https://localhost",
                       headers={"Referer": "https://evil.example/"}).status_code == 400
    assert client.post("/manage/signout", data={"csrf": csrf}, base_url="https://localhost",
                       headers={"Referer": "https://localhost/manage/"}).status_code == 302
    # The API (bearer tokens) and the public beacon take no CSRF token.
    other = app.test_client()
    r = other.post("/api/venues/museum-a/clips", data=form(speech(tmp_path, "s.mp3")),
                   headers=bearer(token), content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    assert other.post("/api/clips/nope/played").status_code == 404
