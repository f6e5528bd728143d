"""Media in an S3-compatible object store (a real SeaweedFS server), and several app hosts
sharing one PostGIS database and one bucket."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from helpers import feature, load, speech
from sqlalchemy import func, select

from voicemap import auth, create_app, db
from voicemap.models import Clip

ROOT = Path(__file__).resolve().parent.parent


def objects(bucket_url: str, endpoint: str) -> list[str]:
    name, prefix = bucket_url.removeprefix("s3://").split("/", 1)
    client = boto3.client("s3", endpoint_url=endpoint)
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    finally:
        client.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def form(data: bytes, name: str = "g.m4a", **extra) -> dict:
    return {"file": (io.BytesIO(data), name), "lang": "en", "narrator_name": "Lily",
            "narrator_age": "9", "transcript": "Welcome.", "consent": "true",
            "consent_by": "Mei Wang (mother)", **extra}


@pytest.fixture
def s3_app(database_url, tmp_path, bucket, seaweed):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "t",
                      "MEDIA_URL": bucket, "S3_ENDPOINT_URL": seaweed,
                      "MEDIA_SCRATCH_DIR": str(tmp_path / "scratch")})
    db.init_schema(app.extensions["voicemap.engine"])
    load(app, [feature("museum-a", 116.39, 39.91), feature("park-b", 116.40, 39.95, "park")])
    with app.app_context(), db.session_scope() as s:
        app.config["test_tokens"] = {
            "alice": auth.create_manager(s, "Alice", ["museum-a"])[1],
            "admin": auth.create_manager(s, "Admin", admin=True)[1]}
    yield app
    app.extensions["voicemap.engine"].dispose()


def test_clip_lifecycle_on_the_object_store(s3_app, tmp_path, bucket, seaweed):
    tokens, client = s3_app.config["test_tokens"], s3_app.test_client()
    r = client.post("/api/venues/museum-a/clips", headers=bearer(tokens["alice"]),
                    data=form(speech(tmp_path / "a", "g.m4a").read_bytes()))
    assert r.status_code == 201, r.get_json()
    clip = r.get_json()
    stored = objects(bucket, seaweed)
    assert len(stored) == 2
    assert any("/published/" in k and k.endswith(".mp3") for k in stored)
    assert any("/originals/" in k for k in stored)
    assert not Path(s3_app.config["MEDIA_SCRATCH_DIR"]).exists() or not any(
        Path(s3_app.config["MEDIA_SCRATCH_DIR"]).iterdir())  # nothing left on local disk
    assert client.get(clip["audio_url"]).status_code == 404  # pending: not public
    assert client.post(f"/api/clips/{clip['id']}/publish",
                       headers=bearer(tokens["admin"])).status_code == 200

    whole = client.get(clip["audio_url"])
    assert whole.status_code == 200
    assert whole.mimetype == "audio/mpeg"
    assert whole.data[:1] == b"\xff"
    assert len(whole.data) == int(whole.headers["Content-Length"])
    assert "private" in whole.headers["Cache-Control"]
    assert whole.headers["Accept-Ranges"] == "bytes"
    part = client.get(clip["audio_url"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.data == whole.data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(whole.data)}"
    tail = client.get(clip["audio_url"], headers={"Range": "bytes=-10"})
    assert tail.status_code == 206
    assert tail.data == whole.data[-10:]
    beyond = client.get(clip["audio_url"], headers={"Range": f"bytes={len(whole.data)}-"})
    assert beyond.status_code == 416
    cached = client.get(clip["audio_url"], headers={"If-None-Match": whole.headers["ETag"]})
    assert cached.status_code == 304
    assert cached.data == b""

    assert client.delete(f"/api/clips/{clip['id']}",
                         headers=bearer(tokens["alice"])).status_code == 204
    assert objects(bucket, seaweed) == []
    assert client.get(clip["audio_url"]).status_code == 404


def test_same_bytes_stored_once_and_kept_while_shared(s3_app, tmp_path, bucket, seaweed):
    tokens, client = s3_app.config["test_tokens"], s3_app.test_client()
    data = speech(tmp_path / "a", "g.m4a").read_bytes()
    ids = [client.post("/api/venues/museum-a/clips", headers=bearer(tokens["alice"]),
                       data=form(data)).get_json()["id"] for _ in range(2)]
    assert len(objects(bucket, seaweed)) == 2
    assert client.delete(f"/api/clips/{ids[0]}",
                         headers=bearer(tokens["alice"])).status_code == 204
    assert len(objects(bucket, seaweed)) == 2  # the other clip still uses both
    client.delete(f"/api/clips/{ids[1]}", headers=bearer(tokens["alice"]))
    assert objects(bucket, seaweed) == []


def test_fsck_on_the_object_store(s3_app, tmp_path, bucket, seaweed):
    tokens, client = s3_app.config["test_tokens"], s3_app.test_client()
    clip = client.post("/api/venues/museum-a/clips", headers=bearer(tokens["alice"]),
                       data=form(speech(tmp_path / "a", "g.m4a").read_bytes())).get_json()
    env = {"VOICEMAP_MEDIA_URL": bucket, "VOICEMAP_S3_ENDPOINT_URL": seaweed,
           "VOICEMAP_MEDIA_SCRATCH_DIR": s3_app.config["MEDIA_SCRATCH_DIR"],
           "VOICEMAP_SECRET_KEY": "t"}

    def fsck(*args):
        from voicemap.cli import main

        return CliRunner().invoke(main, ["--database-url", s3_app.config["DATABASE_URL"],
                                         "fsck", *args], env=env, catch_exceptions=False)

    assert "media and database agree" in fsck().output
    name, prefix = bucket.removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3", endpoint_url=seaweed)
    orphan = f"{prefix}/originals/ab/{'ab' * 32}"
    s3.put_object(Bucket=name, Key=orphan, Body=b"left behind")
    original = next(k for k in objects(bucket, seaweed) if "/originals/" in k and k != orphan)
    s3.delete_object(Bucket=name, Key=original)
    s3.close()
    report = fsck()
    assert report.exit_code == 1
    assert f"orphan file: s3://{name}/{orphan}" in report.output
    assert f"clip {clip['id']}: originals file missing" in report.output
    assert "repaired" in fsck("--repair").output
    assert objects(bucket, seaweed) == []  # the orphan, and the broken clip's other file
    assert "media and database agree" in fsck().output
    with s3_app.app_context():
        assert db.get_session().execute(select(func.count()).select_from(Clip)).scalar_one() == 0


def test_an_unreachable_object_store_is_503_and_stores_nothing(database_url, tmp_path):
    with __import__("socket").socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "t",
                      "MEDIA_URL": "s3://nowhere/media", "S3_ENDPOINT_URL": dead,
                      "MEDIA_SCRATCH_DIR": str(tmp_path / "scratch")})
    db.init_schema(app.extensions["voicemap.engine"])
    load(app, [feature("museum-a", 116.39, 39.91)])
    with app.app_context(), db.session_scope() as s:
        token = auth.create_manager(s, "Alice", ["museum-a"])[1]
    client = app.test_client()
    r = client.post("/api/venues/museum-a/clips", headers=bearer(token),
                    data=form(speech(tmp_path / "a", "g.m4a").read_bytes()))
    assert r.status_code == 503, r.data[:300]
    assert r.get_json()["code"] == "media_unavailable"
    assert r.headers["Retry-After"]
    with app.app_context():
        assert db.get_session().execute(select(func.count()).select_from(Clip)).scalar_one() == 0
    assert list((tmp_path / "scratch").iterdir()) == []
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["media"] == "unwritable"
    app.extensions["voicemap.engine"].dispose()


# --- two app hosts, one database, one bucket ---------------------------------------------


class Host:
    """An app host: gunicorn in a process of its own, with its own working directory."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        workdir.mkdir(parents=True)
        self.log = open(workdir / "gunicorn.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "--workers", "1",
             "--bind", f"127.0.0.1:{self.port}", "--no-control-socket",
             "--chdir", str(ROOT), "voicemap:create_app()"],
            cwd=workdir, env={**os.environ, **env,
                              "VOICEMAP_MEDIA_SCRATCH_DIR": str(workdir / "scratch")},
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.request("GET", "/api/version")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"host did not start: {(workdir / 'gunicorn.log')}")
            time.sleep(0.2)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body,
                                     method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read()

    def upload(self, token: str, data: bytes, title: str) -> tuple[int, bytes]:
        boundary = uuid.uuid4().hex
        fields = {"lang": "en", "narrator_name": "Lily", "narrator_age": "9",
                  "transcript": "Welcome.", "consent": "true", "consent_by": "Parent",
                  "title": title}
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                 .encode() for k, v in fields.items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                     f'filename="g.m4a"\r\nContent-Type: audio/mp4\r\n\r\n'.encode() + data
                     + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request("POST", "/api/venues/museum-a/clips", body, {
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}"})

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def test_two_hosts_share_one_database_and_one_bucket(postgis_url, tmp_path, bucket, seaweed):
    import json

    engine = db.make_engine(postgis_url)
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("TRUNCATE venues, clips, managers, manager_venues CASCADE"))
    engine.dispose()
    setup = create_app({"TESTING": True, "DATABASE_URL": postgis_url, "SECRET_KEY": "t",
                        "MEDIA_URL": bucket, "S3_ENDPOINT_URL": seaweed,
                        "MEDIA_SCRATCH_DIR": str(tmp_path / "setup")})
    load(setup, [feature("museum-a", 116.39, 39.91)])
    with setup.app_context(), db.session_scope() as s:
        alice = auth.create_manager(s, "Alice", ["museum-a"])[1]
        admin = auth.create_manager(s, "Admin", admin=True)[1]
    setup.extensions["voicemap.engine"].dispose()
    env = {"VOICEMAP_DATABASE_URL": postgis_url, "VOICEMAP_MEDIA_URL": bucket,
           "VOICEMAP_S3_ENDPOINT_URL": seaweed, "VOICEMAP_SECRET_KEY": "shared"}
    first, second = Host(tmp_path / "host1", env), Host(tmp_path / "host2", env)
    try:
        data = speech(tmp_path / "a", "g.m4a").read_bytes()
        status, body = first.upload(alice, data, "one")
        assert status == 201, body
        clip = json.loads(body)
        assert second.request("POST", f"/api/clips/{clip['id']}/publish",
                              headers=bearer(admin))[0] == 200
        played = first.request("GET", clip["audio_url"])
        assert played[0] == 200
        assert played[1] == second.request("GET", clip["audio_url"])[1]
        assert second.request("DELETE", f"/api/clips/{clip['id']}",
                              headers=bearer(alice))[0] == 204
        assert first.request("GET", clip["audio_url"])[0] == 404
        assert objects(bucket, seaweed) == []

        # The same recording uploaded to both hosts at the same moment: stored once.
        results: dict[str, tuple[int, bytes]] = {}
        threads = [threading.Thread(target=lambda h=h, n=n: results.__setitem__(
            n, h.upload(alice, data, n))) for h, n in ((first, "a"), (second, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        assert [results[n][0] for n in "ab"] == [201, 201], results
        ids = [json.loads(results[n][1])["id"] for n in "ab"]
        assert len(objects(bucket, seaweed)) == 2  # one MP3, one original, shared
        for cid in ids:
            second.request("POST", f"/api/clips/{cid}/publish", headers=bearer(admin))
        assert first.request("DELETE", f"/api/clips/{ids[0]}",
                             headers=bearer(alice))[0] == 204
        assert len(objects(bucket, seaweed)) == 2  # kept for the other clip
        assert second.request("GET", f"/audio/{ids[1]}.mp3")[0] == 200
    finally:
        first.stop()
        second.stop()
