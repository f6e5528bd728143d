"""Rate limits: failed token checks per address (API and /manage sign-in), uploads per
manager, public submissions per address; memory storage, and Redis shared by two apps."""

from __future__ import annotations

import logging
import os
import re
import uuid

import pytest
from helpers import feature, load, speech

from voicemap import auth, create_app, db
from voicemap.limits import submit_limit

ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}
REDIS_URL = os.environ.get("VOICEMAP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
FORM = {"lang": "en", "narrator_name": "Lily", "narrator_age": "9",
        "transcript": "Welcome to the museum.", "consent": "true",
        "consent_by": "Mei Wang (mother)"}


@pytest.fixture
def make_app(database_url, tmp_path):
    """Apps on the test database with extra settings (two may share one database)."""
    made = []

    def make(**config):
        app = create_app({"TESTING": True, "DATABASE_URL": database_url,
                          "MEDIA_DIR": str(tmp_path / "media"), "SECRET_KEY": "test-secret",
                          **config})
        db.init_schema(app.extensions["voicemap.engine"])
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["voicemap.engine"].dispose()


def managers(app) -> dict[str, str]:
    load(app, [feature("museum-a", 116.34, 39.90)])
    with app.app_context(), db.session_scope() as s:
        _, alice = auth.create_manager(s, "Alice", ["museum-a"])
        _, bob = auth.create_manager(s, "Bob", ["museum-a"])
    return {"alice": alice, "bob": bob}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def clips_with(client, token, **kwargs):
    return client.get("/api/venues/museum-a/clips", headers=bearer(token), **kwargs)


def assert_rate_limited(r, most: int) -> None:
    assert r.status_code == 429, r.data[:300]
    body = r.get_json()
    assert body["code"] == "rate_limited"
    assert body["error"]
    assert 1 <= body["retry_after"] <= most
    assert r.headers["Retry-After"] == str(body["retry_after"])
    assert body["request_id"] == r.headers["X-Request-Id"]


def test_wrong_tokens_are_limited_per_address(app, client):
    tokens = managers(app)
    for _ in range(10):
        assert clips_with(client, "vm_guess").status_code == 401
    # Over the limit even the right token is refused: otherwise guessing would go on.
    assert_rate_limited(clips_with(client, tokens["alice"]), most=60)
    assert_rate_limited(clips_with(client, "vm_guess"), most=60)
    # Another address has its own count.
    assert clips_with(client, tokens["alice"], environ_base=ELSEWHERE).status_code == 200
    assert clips_with(client, "vm_guess", environ_base=ELSEWHERE).status_code == 401
    # Requests without a token are not token checks: the public API still answers.
    assert client.get("/api/venues/museum-a/clips").status_code == 200


def test_a_valid_manager_is_not_limited(app, client):
    tokens = managers(app)
    for _ in range(30):
        assert clips_with(client, tokens["alice"]).status_code == 200


def csrf(client) -> str:
    page = client.get("/manage/").get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def sign_in(client, token: str):
    return client.post("/manage/signin", data={"token": token, "csrf": csrf(client)})


def test_manage_sign_in_failures_are_limited(app, client):
    tokens = managers(app)
    for _ in range(10):
        assert sign_in(client, "vm_guess").status_code == 401
    r = sign_in(client, tokens["alice"])
    assert r.status_code == 429
    assert r.mimetype == "text/html"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "登录失败次数太多" in r.get_data(as_text=True)  # in the page's language
    # Bearer checks from the same address share the count of failures.
    assert_rate_limited(clips_with(client, tokens["alice"]), most=60)
    assert sign_in(client.application.test_client(), tokens["alice"]).status_code == 429
    other = app.test_client()
    other.environ_base.update(ELSEWHERE)
    assert sign_in(other, tokens["alice"]).status_code == 302


def post_clip(client, token, path, **kwargs):
    with open(path, "rb") as fh:
        return client.post("/api/venues/museum-a/clips", data={**FORM, "file": (fh, path.name)},
                           headers=bearer(token), content_type="multipart/form-data", **kwargs)


def test_uploads_are_limited_per_manager(make_app, tmp_path):
    app = make_app(RATELIMIT_UPLOAD="2/hour")
    tokens = managers(app)
    client = app.test_client()
    src = speech(tmp_path / "audio", "guide.m4a")
    assert post_clip(client, tokens["alice"], src).status_code == 201
    # The count follows the manager, not the address.
    assert post_clip(client, tokens["alice"], src, environ_base=ELSEWHERE).status_code == 201
    assert_rate_limited(post_clip(client, tokens["alice"], src), most=3600)
    assert post_clip(client, tokens["bob"], src).status_code == 201
    # The /manage upload counts against the same limit.
    page = app.test_client()
    assert sign_in(page, tokens["alice"]).status_code == 302
    with open(src, "rb") as fh:
        r = page.post("/manage/venues/museum-a/clips",
                      data={**FORM, "file": (fh, src.name), "csrf": csrf(page)},
                      content_type="multipart/form-data")
    assert r.status_code == 429
    assert r.mimetype == "text/html"
    assert int(r.headers["Retry-After"]) > 60


def test_manage_upload_is_counted(make_app, tmp_path):
    app = make_app(RATELIMIT_UPLOAD="1/hour")
    tokens = managers(app)
    page = app.test_client()
    assert sign_in(page, tokens["bob"]).status_code == 302
    src = speech(tmp_path / "audio", "guide.wav")
    statuses = []
    for _ in range(2):
        with open(src, "rb") as fh:
            r = page.post("/manage/venues/museum-a/clips",
                          data={**FORM, "file": (fh, src.name), "csrf": csrf(page)},
                          headers={"Accept": "application/json"},
                          content_type="multipart/form-data")
        statuses.append(r.status_code)
    assert statuses == [201, 429]
    assert r.get_json()["code"] == "rate_limited"


def test_submit_limit_counts_every_request_per_address(make_app):
    app = make_app(RATELIMIT_SUBMIT="3/hour")
    app.add_url_rule("/api/test-submit", "test_submit", submit_limit(lambda: ("ok", 201)),
                     methods=["POST"])
    client = app.test_client()
    assert [client.post("/api/test-submit").status_code for _ in range(3)] == [201] * 3
    assert_rate_limited(client.post("/api/test-submit"), most=3600)
    assert client.post("/api/test-submit", environ_base=ELSEWHERE).status_code == 201


def test_limits_can_be_turned_off(make_app):
    app = make_app(RATELIMIT_ENABLED="false")  # as VOICEMAP_RATELIMIT_ENABLED=false gives it
    tokens = managers(app)
    client = app.test_client()
    assert {clips_with(client, "vm_guess").status_code for _ in range(15)} == {401}
    assert clips_with(client, tokens["alice"]).status_code == 200


def test_a_malformed_limit_is_refused_at_start(tmp_path):
    with pytest.raises(ValueError, match="VOICEMAP_RATELIMIT_AUTH"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'vm.sqlite'}",
                    "SECRET_KEY": "t", "RATELIMIT_AUTH": "often"})


@pytest.fixture
def shared_redis():
    """The local Redis and a key prefix of this test's own (removed after)."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") or os.environ.get("VOICEMAP_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required but unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"no Redis at {REDIS_URL}")
    prefix = f"voicemap-test-{uuid.uuid4().hex[:12]}"
    yield prefix, client
    for key in client.scan_iter(f"*{prefix}*"):
        client.delete(key)
    client.close()


def test_two_apps_on_one_redis_share_the_count(make_app, shared_redis):
    prefix, redis = shared_redis
    first = make_app(REDIS_URL=REDIS_URL, RATELIMIT_KEY_PREFIX=prefix)
    second = make_app(REDIS_URL=REDIS_URL, RATELIMIT_KEY_PREFIX=prefix)
    tokens = managers(first)
    one, two = first.test_client(), second.test_client()
    for _ in range(5):
        assert clips_with(one, "vm_guess").status_code == 401
        assert clips_with(two, "vm_guess").status_code == 401
    assert_rate_limited(clips_with(one, tokens["alice"]), most=60)
    assert_rate_limited(clips_with(two, tokens["alice"]), most=60)
    assert clips_with(two, tokens["alice"], environ_base=ELSEWHERE).status_code == 200
    assert list(redis.scan_iter(f"*{prefix}/auth/*"))  # the count is in Redis
    # A third app with another prefix (another run) does not see these counts.
    third = make_app(REDIS_URL=REDIS_URL, RATELIMIT_KEY_PREFIX=prefix + "-other")
    assert clips_with(third.test_client(), tokens["alice"]).status_code == 200


def test_an_unreachable_redis_does_not_stop_requests(make_app, caplog):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens on port 1
    tokens = managers(app)
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="voicemap.limits"):
        assert clips_with(client, tokens["alice"]).status_code == 200
        assert clips_with(client, "vm_guess").status_code == 401
    assert "rate limit storage failed" in caplog.text
