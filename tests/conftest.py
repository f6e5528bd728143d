"""Fixtures: an app on each backend (SpatiaLite file, throwaway PostGIS database), clients."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from voicemap import create_app, db

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("spatialite", "postgis")
ADMIN_URL = os.environ.get("VOICEMAP_TEST_POSTGRES_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def throwaway_postgis(prefix: str = "voicemap_test"):
    """Create a PostGIS database for the duration of the block, then drop it.

    Without a reachable PostgreSQL the caller's tests are skipped, unless
    VOICEMAP_REQUIRE_POSTGIS=1 (as scripts/test and CI set), where they fail.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("VOICEMAP_REQUIRE_POSTGIS") == "1":
            pytest.fail(f"PostgreSQL is required but unreachable at {ADMIN_URL}: {exc}")
        pytest.skip(f"no PostgreSQL at {ADMIN_URL}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """A real S3-compatible server (SeaweedFS) on loopback for the run; its S3 endpoint."""
    from seaweed import SeaweedServer

    try:
        server = SeaweedServer(tmp_path_factory.mktemp("seaweed"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def seaweed_bucket(seaweed):
    """One bucket for the run (each bucket costs SeaweedFS volumes of its own)."""
    import boto3

    name = f"vm{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=seaweed)
    client.create_bucket(Bucket=name)
    client.close()
    return name


@pytest.fixture
def bucket(seaweed_bucket):
    """An empty place in the object store: an s3:// URL with a prefix of the test's own."""
    return f"s3://{seaweed_bucket}/t{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def postgis_url():
    """A throwaway PostGIS database, with the schema, for the whole run."""
    with throwaway_postgis() as url:
        engine = db.make_engine(url)
        db.init_schema(engine)
        engine.dispose()
        yield url


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """The name of the backend a test runs on; every test using it runs on both."""
    return request.param


@pytest.fixture
def database_url(backend, tmp_path, request) -> str:
    if backend == "spatialite":
        return f"sqlite:///{tmp_path / 'voicemap.sqlite'}"
    url = request.getfixturevalue("postgis_url")
    engine = db.make_engine(url)
    with engine.begin() as conn:  # each test starts from empty tables
        conn.execute(text("TRUNCATE venues, clips, managers, manager_venues, campaigns, works "
                          "CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def app(database_url, tmp_path):
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        "MEDIA_DIR": str(tmp_path / "media"),
        "SECRET_KEY": "test-secret",
    })
    db.init_schema(app.extensions["voicemap.engine"])
    yield app
    app.extensions["voicemap.engine"].dispose()


class BufferedClient(FlaskClient):
    """Reads every response whole and closes it (file responses hold files open otherwise);
    pass buffered=False to see a streamed response as it is."""

    def open(self, *args, buffered: bool = True, **kwargs):
        return super().open(*args, buffered=buffered, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = BufferedClient
    return app.test_client()


@pytest.fixture
def runner(app, tmp_path):
    """Invoke the ``voicemap`` CLI against the test app's database."""
    from click.testing import CliRunner

    from voicemap.cli import main

    class Runner:
        def invoke(self, *args, **kwargs):
            env = {"VOICEMAP_MEDIA_DIR": app.config["MEDIA_DIR"],
                   "VOICEMAP_SECRET_KEY": "test-secret", **kwargs.pop("env", {})}
            return CliRunner().invoke(
                main, ["--database-url", app.config["DATABASE_URL"], *args],
                catch_exceptions=False, env=env, **kwargs)

    return Runner()


@pytest.fixture
def session(app):
    with app.app_context():
        yield db.get_session()


CHROMIUM = os.environ.get("VOICEMAP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for every browser test: Playwright's sync API runs one event
    loop per process, so a second ``sync_playwright()`` while another lives fails."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
