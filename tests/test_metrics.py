"""/metrics (requests, latency, uploads, media store errors; who may see it; multiprocess
mode) and request ids (headers, error bodies, log lines)."""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import subprocess
import sys
import textwrap

import pytest
from helpers import feature, load, speech
from prometheus_client.parser import text_string_to_metric_families

from voicemap import auth, create_app, db
from voicemap.http import LOG_FORMAT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}
FORM = {"lang": "en", "narrator_name": "Lily", "narrator_age": "9",
        "transcript": "Welcome to the museum.", "consent": "true",
        "consent_by": "Mei Wang (mother)"}


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} from Prometheus' text format."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(client, **kwargs) -> dict[tuple, float]:
    r = client.get("/metrics", **kwargs)
    assert r.status_code == 200, r.status_code
    assert r.mimetype == "text/plain"
    return samples(r.get_data(as_text=True))


def requests_total(found, endpoint: str, status: str) -> float:
    key = ("voicemap_http_requests_total", (("endpoint", endpoint), ("status", status)))
    return found.get(key, 0)


def upload_count(found) -> float:
    return found.get(("voicemap_upload_processing_seconds_count", ()), 0)


@pytest.fixture
def alice(app) -> str:
    load(app, [feature("museum-a", 116.34, 39.90)])
    with app.app_context(), db.session_scope() as s:
        _, token = auth.create_manager(s, "Alice", ["museum-a"])
    return token


def test_requests_are_counted_by_endpoint_and_status(client, alice):
    client.get("/api/version")
    client.get("/api/version")
    client.get("/api/venues/museum-a")
    assert client.get("/api/venues/nowhere").status_code == 404
    assert client.get("/no/such/page/123").status_code == 404
    found = scrape(client)
    assert requests_total(found, "api.version", "200") == 2
    assert requests_total(found, "api.venue_detail", "200") == 1
    assert requests_total(found, "api.venue_detail", "404") == 1
    assert requests_total(found, "unmatched", "404") == 1  # no raw paths as labels
    assert not any("nowhere" in str(key) or "/no/such" in str(key) for key in found)
    latency = {labels: v for (name, labels), v in found.items()
               if name == "voicemap_http_request_duration_seconds_bucket"
               and ("endpoint", "api.version") in labels}
    assert len(latency) > 5
    assert latency[(("endpoint", "api.version"), ("le", "+Inf"))] == 2
    assert found[("voicemap_http_request_duration_seconds_count",
                  (("endpoint", "api.version"),))] == 2


def test_upload_processing_is_timed(client, alice, tmp_path):
    assert upload_count(scrape(client)) == 0
    src = speech(tmp_path / "audio", "guide.m4a")
    with open(src, "rb") as fh:
        r = client.post("/api/venues/museum-a/clips", data={**FORM, "file": (fh, src.name)},
                        headers={"Authorization": f"Bearer {alice}"},
                        content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    found = scrape(client)
    assert upload_count(found) == 1
    assert found[("voicemap_upload_processing_seconds_sum", ())] > 0.1
    assert requests_total(found, "clips.create", "201") == 1


def test_a_full_media_disk_is_counted_and_logged_with_the_request_id(
        client, alice, monkeypatch, caplog):
    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("voicemap.http.clips.save_upload", full)
    with caplog.at_level(logging.WARNING, logger="voicemap"):
        r = client.post("/api/venues/museum-a/clips",
                        data={**FORM, "file": (io.BytesIO(b"RIFF...."), "g.wav")},
                        headers={"Authorization": f"Bearer {alice}"},
                        content_type="multipart/form-data")
    assert r.status_code == 507
    body = r.get_json()
    rid = r.headers["X-Request-Id"]
    assert body["code"] == "insufficient_storage"
    assert body["request_id"] == rid
    found = scrape(client)
    assert found[("voicemap_media_store_errors_total", (("kind", "ENOSPC"),))] == 1
    assert requests_total(found, "clips.create", "507") == 1
    logged = [rec for rec in caplog.records if "media store is full" in rec.getMessage()]
    assert logged
    assert all(rec.request_id == rid for rec in logged)
    assert f"[{rid}]" in logging.Formatter(LOG_FORMAT).format(logged[0])


def test_metrics_are_hidden_from_other_addresses(make_app):
    app = make_app(METRICS_TOKEN="scrape-secret")
    client = app.test_client()
    assert client.get("/metrics", environ_base=ELSEWHERE).status_code == 404
    assert client.get("/metrics", environ_base=ELSEWHERE,
                      headers={"Authorization": "Bearer wrong"}).status_code == 404
    scrape(client, environ_base=ELSEWHERE, headers={"Authorization": "Bearer scrape-secret"})
    scrape(client)  # loopback
    scrape(client, environ_base={"REMOTE_ADDR": "::1"})
    # Through the front server, the client's own address counts: a visitor gets 404.
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"},
                      environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 404


def test_without_a_token_only_local_requests_see_metrics(client):
    assert client.get("/metrics", environ_base=ELSEWHERE,
                      headers={"Authorization": "Bearer "}).status_code == 404
    scrape(client)


@pytest.fixture
def make_app(tmp_path):
    made = []

    def make(**config):
        app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'vm.sqlite'}",
                          "MEDIA_DIR": str(tmp_path / "media"), "SECRET_KEY": "t", **config})
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["voicemap.engine"].dispose()


HEX_ID = re.compile(r"[0-9a-f]{32}")


def test_every_response_has_a_request_id(client, alice):
    ok = client.get("/api/version")
    assert HEX_ID.fullmatch(ok.headers["X-Request-Id"])
    other = client.get("/api/version")
    assert other.headers["X-Request-Id"] != ok.headers["X-Request-Id"]
    for r in (client.get("/api/venues/nowhere"), client.get("/api/nearest?lat=x"),
              client.post("/api/version"),
              client.get("/api/review", headers={"Authorization": "Bearer vm_wrong"})):
        assert r.status_code in (400, 401, 404, 405)
        body = r.get_json()
        assert body["request_id"] == r.headers["X-Request-Id"]
        assert body["code"]
    page = client.get("/manage/")
    assert HEX_ID.fullmatch(page.headers["X-Request-Id"])


def test_the_front_servers_request_id_is_kept_if_safe(client):
    sent = {"X-Request-Id": "0f3c9a7e5d2b4c1a.9-x_Y"}
    r = client.get("/api/venues/nowhere", headers=sent, environ_base={"REMOTE_ADDR": "::1"})
    assert r.headers["X-Request-Id"] == sent["X-Request-Id"]
    assert r.get_json()["request_id"] == sent["X-Request-Id"]
    for unsafe in ("has space", "x" * 65, "a\u00e9b", "<script>", ""):
        r = client.get("/api/version", headers={"X-Request-Id": unsafe})
        assert HEX_ID.fullmatch(r.headers["X-Request-Id"]), unsafe


def test_a_forged_request_id_from_elsewhere_is_replaced(client):
    r = client.get("/api/venues/nowhere", headers={"X-Request-Id": "forged-123"},
                   environ_base=ELSEWHERE)
    assert r.status_code == 404
    assert HEX_ID.fullmatch(r.headers["X-Request-Id"])
    assert r.get_json()["request_id"] == r.headers["X-Request-Id"]


WORKER = textwrap.dedent("""
    import sys
    from voicemap import create_app

    database, media, n, show = sys.argv[1:]
    app = create_app({"DATABASE_URL": "sqlite:///" + database, "MEDIA_DIR": media,
                      "SECRET_KEY": "t"})
    client = app.test_client()
    for _ in range(int(n)):
        assert client.get("/api/version").status_code == 200
    client.get("/no/such/page")
    if show == "show":
        sys.stdout.write(client.get("/metrics").get_data(as_text=True))
""")


def test_multiprocess_mode_adds_up_the_workers(tmp_path):
    """Two processes write into one PROMETHEUS_MULTIPROC_DIR; a third's /metrics sums them."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}

    def worker(n: int, show: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path / "vm.sqlite"), str(tmp_path / "m"),
             str(n), show], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)

    writers = [worker(3, "-"), worker(4, "-")]
    for proc in writers:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert len(list(shared.glob("*.db"))) >= 2  # files of two processes
    reader = worker(0, "show")
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    found = samples(out)
    assert requests_total(found, "api.version", "200") == 7
    assert requests_total(found, "unmatched", "404") == 3
    assert found[("voicemap_http_request_duration_seconds_count",
                  (("endpoint", "api.version"),))] == 7
