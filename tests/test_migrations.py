"""Schema migrations: a database made by the last release without migrations is adopted and
keeps every row and file; an empty database gets the same schema; upgrades are idempotent
and one process at a time; the models and the migrations agree. On both backends."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import geoalchemy2.alembic_helpers  # noqa: F401  (as env.py does: it patches index reflection)
import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from conftest import ROOT, BufferedClient, throwaway_postgis
from helpers import SAY, speech
from sqlalchemy import inspect, text

from voicemap import create_app, db, migrations, models
from voicemap.cli import main
from voicemap.migrations import include_object

# The last release without migrations: its code made the databases 0001_baseline adopts.
PREVIOUS_RELEASE = "e0db993"
VENUES = json.loads((ROOT / "data" / "venues.geojson").read_text(encoding="utf-8"))["features"]
APP_TABLES = {"venues": "id", "managers": "id", "manager_venues": "manager_id, venue_id",
              "clips": "id"}


@pytest.fixture(scope="module")
def old_code(tmp_path_factory) -> Path:
    """The previous release's source tree, from git history."""
    tmp = tmp_path_factory.mktemp("previous-release")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", PREVIOUS_RELEASE],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    assert not (tmp / "voicemap" / "migrations").exists()
    return tmp


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("recordings")
    return {"zh": speech(tmp, "zh.m4a", "zh"), "en": speech(tmp, "en.mp3", "en")}


@contextmanager
def database(backend: str, tmp_path: Path, name: str = "voicemap.sqlite"):
    """The URL of a new, empty database on ``backend``."""
    if backend == "spatialite":
        yield f"sqlite:///{tmp_path / name}"
    else:
        with throwaway_postgis("voicemap_migrations") as url:
            yield url


def run_old(old_code: Path, url: str, media: Path, *commands: list[str]) -> list[str]:
    """Run the previous release's ``voicemap`` commands (its code, this venv's Python) in
    one process; the output of each."""
    program = """if True:
        import contextlib, io, json, os, sys
        import voicemap
        assert voicemap.__file__.startswith(os.environ["PYTHONPATH"] + os.sep)
        print("voicemap from", voicemap.__file__, file=sys.stderr)
        from voicemap.cli import main
        outputs = []
        for args in json.loads(sys.argv[1]):
            with contextlib.redirect_stdout(io.StringIO()) as out:
                main(args, standalone_mode=False)
            outputs.append(out.getvalue())
        print(json.dumps(outputs))
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEMAP_")}
    env.update(PYTHONPATH=str(old_code), VOICEMAP_MEDIA_DIR=str(media),
               VOICEMAP_SECRET_KEY="test-secret")
    args = [["--database-url", url, *command] for command in commands]
    done = subprocess.run([sys.executable, "-c", program, json.dumps(args)], env=env,
                          cwd=old_code, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"voicemap from {old_code / 'voicemap' / '__init__.py'}" in done.stderr
    return json.loads(done.stdout)


def cli(url: str, *args: str, media: Path | None = None) -> str:
    """Run this code's ``voicemap`` command; its output."""
    env = {"VOICEMAP_SECRET_KEY": "test-secret"}
    if media is not None:
        env["VOICEMAP_MEDIA_DIR"] = str(media)
    result = CliRunner().invoke(main, ["--database-url", url, *args], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def schema(url: str) -> dict:
    """What the database holds besides rows: tables, columns, keys, indexes, spatial set-up."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            out: dict = {}
            for table in sorted(insp.get_table_names()):
                if table == "alembic_version":
                    continue
                out[table] = {
                    "columns": [(c["name"], str(c["type"]), c["nullable"], str(c["default"]))
                                for c in insp.get_columns(table)],
                    "pk": insp.get_pk_constraint(table)["constrained_columns"],
                    "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"],
                                   tuple(f["referred_columns"]), str(f["options"]))
                                  for f in insp.get_foreign_keys(table)),
                    "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                                      for i in insp.get_indexes(table)),
                    "unique": sorted(tuple(u["column_names"])
                                     for u in insp.get_unique_constraints(table)),
                }
            if conn.dialect.name == "sqlite":  # every CREATE statement, triggers included
                out["sqlite_master"] = conn.exec_driver_sql(
                    "SELECT type, name, tbl_name, sql FROM sqlite_master "
                    "WHERE tbl_name != 'alembic_version' ORDER BY type, name").all()
                out["geometry_columns"] = conn.exec_driver_sql(
                    "SELECT * FROM geometry_columns").all()
                out["spatial_ref_sys"] = conn.exec_driver_sql(
                    "SELECT count(*) FROM spatial_ref_sys").scalar()
            else:
                out["pg_indexes"] = conn.execute(text(
                    "SELECT tablename, indexname, indexdef FROM pg_indexes "
                    "WHERE schemaname = 'public' AND tablename != 'alembic_version' "
                    "ORDER BY 1, 2")).all()
                out["constraints"] = conn.execute(text(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                    "FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
                    "AND conrelid::regclass::text != 'alembic_version' ORDER BY 1, 2")).all()
                out["extensions"] = conn.execute(text(
                    "SELECT extname FROM pg_extension ORDER BY 1")).scalars().all()
            return out
    finally:
        engine.dispose()


def rows(url: str, columns: dict[str, list[str]] | None = None) -> dict[str, list[tuple]]:
    """Every row of the app's tables, in key order (only ``columns``, if given)."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return {table: [tuple(r) for r in conn.exec_driver_sql(
                        f"SELECT {', '.join(columns[table]) if columns else '*'} FROM {table} "
                        f"ORDER BY {key}")]
                    for table, key in APP_TABLES.items()}
    finally:
        engine.dispose()


def files(media: Path) -> dict[str, str]:
    return {str(p.relative_to(media)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(media.rglob("*")) if p.is_file() and "locks" not in p.parts}


def revision(url: str) -> str | None:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return db.current_revision(conn)
    finally:
        engine.dispose()


# --- a database made by the previous release ------------------------------------------------


def test_previous_release_database_is_adopted_with_every_row_and_file(
        backend, tmp_path, old_code, recordings):
    media = tmp_path / "media"
    venue = VENUES[0]["properties"]
    vid = venue["id"]
    with database(backend, tmp_path) as url:
        init, imported, manager, admin, published, pending = run_old(
            old_code, url, media,
            ["init-db"],
            ["import", str(ROOT / "data" / "venues.geojson")],
            ["create-manager", "Ms Wang", "--venue", vid],
            ["create-manager", "Reviewer", "--admin"],
            ["add-clip", vid, str(recordings["zh"]), "--lang", "zh", "--narrator", "小雨",
             "--age", "9", "--transcript", SAY["zh"], "--consent-by", "Parent", "--publish"],
            ["add-clip", vid, str(recordings["en"]), "--lang", "en", "--narrator", "Lily",
             "--age", "8", "--transcript", SAY["en"], "--consent-by", "Parent"])
        assert "schema ready" in init
        assert f"{len(VENUES)} features: {len(VENUES)} inserted" in imported
        manager_token = manager.splitlines()[-1]
        admin_token = admin.splitlines()[-1]
        assert "published" in published
        assert "pending" in pending
        published, pending = published.split()[1].rstrip(":"), pending.split()[1].rstrip(":")

        schema_before, rows_before, files_before = schema(url), rows(url), files(media)
        assert len(rows_before["clips"]) == 2
        assert len(files_before) == 4  # 2 MP3s, 2 originals
        engine = db.make_engine(url)
        with engine.connect() as conn:
            mp3 = media / "published" / (sha := conn.execute(text(
                "SELECT audio_sha256 FROM clips WHERE id = :id"), {"id": published}
            ).scalar())[:2] / f"{sha}.mp3"
        engine.dispose()
        audio_before = mp3.read_bytes()
        assert revision(url) is None
        assert cli(url, "db", "current").strip() == \
            "none: made before migrations (`voicemap db upgrade` adopts it)"

        # Adopted at the baseline unchanged, then upgraded to head by later revisions.
        out = cli(url, "db", "upgrade", db.BASELINE_REVISION)
        assert out.splitlines()[0] == ("adopted a database made before migrations: stamped "
                                       "0001_baseline, schema unchanged")
        assert revision(url) == db.BASELINE_REVISION
        assert schema(url) == schema_before
        assert rows(url) == rows_before
        cli(url, "db", "upgrade")
        assert cli(url, "db", "current").strip() == f"{db.head_revision()} (head)"
        assert revision(url) == db.head_revision()
        old_columns = {t: [c[0] for c in schema_before[t]["columns"]] for t in APP_TABLES}
        assert rows(url, old_columns) == rows_before
        assert files(media) == files_before

        # The app, on the upgraded database, serves what the old code stored.
        app = create_app({"TESTING": True, "DATABASE_URL": url, "MEDIA_DIR": str(media),
                          "SECRET_KEY": "test-secret"})
        app.test_client_class = BufferedClient
        client = app.test_client()
        try:
            r = client.get(f"/api/venues/{vid}")
            assert r.status_code == 200
            props = r.get_json()["properties"]
            assert (props["name_zh"], props["name_en"], props["clip_count"]) == \
                (venue["name_zh"], venue["name_en"], 1)
            assert r.get_json()["geometry"]["coordinates"] == \
                VENUES[0]["geometry"]["coordinates"]
            r = client.get(f"/api/clips/{published}")
            assert r.status_code == 200
            assert (r.get_json()["status"], r.get_json()["narrator_name"]) == \
                ("published", "小雨")
            r = client.get(f"/audio/{published}.mp3")
            assert (r.status_code, r.mimetype) == (200, "audio/mpeg")
            assert r.data == audio_before
            assert client.get(f"/api/clips/{pending}").status_code == 404
            # The tokens' hashes came through: the manager's and the reviewer's still work.
            r = client.get(f"/api/venues/{vid}/clips",
                           headers={"Authorization": f"Bearer {manager_token}"})
            assert r.status_code == 200
            r = client.get("/api/review", headers={"Authorization": f"Bearer {admin_token}"})
            assert [c["id"] for c in r.get_json()["clips"]] == [pending]
            # And the app writes to it: the reviewer publishes the pending clip.
            r = client.post(f"/api/clips/{pending}/publish",
                            headers={"Authorization": f"Bearer {admin_token}"})
            assert r.status_code == 200
            assert client.get(f"/audio/{pending}.mp3").status_code == 200
        finally:
            app.extensions["voicemap.engine"].dispose()


def test_empty_database_gets_the_previous_release_schema(backend, tmp_path, old_code):
    """0001_baseline from empty makes what the previous release's init-db made."""
    with database(backend, tmp_path, "old.sqlite") as old, \
            database(backend, tmp_path, "new.sqlite") as new:
        run_old(old_code, old, tmp_path / "media", ["init-db"])
        out = cli(new, "db", "upgrade", db.BASELINE_REVISION)
        assert f"upgraded from empty to {db.BASELINE_REVISION}" in out
        assert schema(new) == schema(old)


def test_upgrade_twice_is_a_no_op_and_commands_report(backend, tmp_path):
    with database(backend, tmp_path) as url:
        assert cli(url, "db", "current").strip() == "none: empty database"
        out = cli(url, "db", "upgrade")
        assert f"upgraded from empty to {db.head_revision()}" in out
        first = schema(url)
        out = cli(url, "db", "upgrade")
        assert f"already at {db.head_revision()}, nothing to do" in out
        assert "already at" in cli(url, "init-db")
        engine = db.make_engine(url)
        result = db.init_schema(engine)
        engine.dispose()
        assert (result.before, result.after, result.adopted) == \
            (db.head_revision(), db.head_revision(), False)
        assert schema(url) == first
        assert cli(url, "db", "current").strip() == f"{db.head_revision()} (head)"
        history = cli(url, "db", "history").splitlines()
        assert history[0].startswith(f"{db.head_revision()} (head): ")
        assert history[-1].startswith("0001_baseline")
        assert "last release without migrations" in history[-1]


def test_init_db_creates_the_schema(backend, tmp_path):
    with database(backend, tmp_path) as url:
        assert f"upgraded from empty to {db.head_revision()}" in cli(url, "init-db")
        assert revision(url) == db.head_revision()


@pytest.fixture
def scratch_migrations(tmp_path, monkeypatch) -> Path:
    """A copy of voicemap/migrations for this test to write revisions into."""
    copy = tmp_path / "migrations"
    shutil.copytree(Path(migrations.__file__).parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(db, "MIGRATIONS_PACKAGE", str(copy))
    db.script_directory.cache_clear()
    yield copy
    db.script_directory.cache_clear()


def test_revision_command_writes_the_next_readable_revision(tmp_path, scratch_migrations):
    url = f"sqlite:///{tmp_path / 'scratch.sqlite'}"
    head = db.head_revision()
    rev = f"{int(head[:4]) + 1:04d}_managers_contact_e_mail"
    cli(url, "db", "upgrade")
    out = cli(url, "db", "revision", "-m", "Managers: contact e-mail!", "--autogenerate")
    path = scratch_migrations / "versions" / f"{rev}.py"
    assert out.splitlines()[-1] == f"wrote {path}"
    source = path.read_text(encoding="utf-8")
    assert f"revision = '{rev}'" in source
    assert f"down_revision = '{head}'" in source
    assert "batch_op" not in source  # the models and the database agree: nothing to do
    assert cli(url, "db", "history").splitlines()[0] == \
        f"{rev} (head): Managers: contact e-mail!"
    assert f"upgraded from {head} to {rev}" in \
        cli(url, "db", "upgrade")
    assert cli(url, "db", "current").strip() == f"{rev} (head)"
    long = cli(url, "db", "revision", "-m", "a very long message " * 5).splitlines()[-1]
    assert long.endswith(f"/{int(head[:4]) + 2:04d}_a_very_long_message_a_very.py")  # VARCHAR(32)


def test_models_agree_with_the_migrations(backend, tmp_path):
    """Autogenerate finds nothing to do at head: every model change has its revision."""
    with database(backend, tmp_path) as url:
        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
            with engine.connect() as conn:
                ctx = MigrationContext.configure(conn, opts={
                    "include_object": include_object, "compare_type": True})
                assert compare_metadata(ctx, models.Base.metadata) == []
        finally:
            engine.dispose()


def test_a_partial_database_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'partial.sqlite'}"
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE venues (id TEXT PRIMARY KEY)")
    with pytest.raises(RuntimeError, match="no managers, manager_venues, clips"):
        db.upgrade(engine)
    with engine.connect() as conn:  # nothing happened
        assert db.current_revision(conn) is None
        assert not inspect(conn).has_table("managers")
    engine.dispose()


def test_older_database_gets_the_two_columns_init_schema_used_to_add(backend, tmp_path):
    """A database from before the last release (no managers.session_epoch, no
    clips.synthetic) is adopted with those columns added, as start-up used to add them."""
    with database(backend, tmp_path) as url:
        engine = db.make_engine(url)
        try:
            db.upgrade(engine, db.BASELINE_REVISION)
            with engine.begin() as conn:
                conn.execute(text("DROP TABLE alembic_version"))
                conn.execute(text("ALTER TABLE managers DROP COLUMN session_epoch"))
                conn.execute(text("ALTER TABLE clips DROP COLUMN synthetic"))
                conn.execute(text("INSERT INTO managers (name, token_hash, is_admin, "
                                  "created_at) VALUES ('Ms Li', 'ab', false, "
                                  "CURRENT_TIMESTAMP)"))
            result = db.upgrade(engine)
            assert result.adopted
            assert result.added == ["managers.session_epoch", "clips.synthetic"]
            with engine.connect() as conn:
                assert conn.execute(text(
                    "SELECT name, session_epoch FROM managers")).all() == [("Ms Li", 0)]
                insp = inspect(conn)
                [synthetic] = [c for c in insp.get_columns("clips") if c["name"] == "synthetic"]
                assert not synthetic["nullable"]
        finally:
            engine.dispose()


def test_a_database_migrated_by_newer_code_is_left_alone(backend, tmp_path):
    with database(backend, tmp_path) as url:
        cli(url, "db", "upgrade")
        engine = db.make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
        engine.dispose()
        assert "0099_future (unknown to this version of voicemap" in cli(url, "db", "current")
        result = CliRunner().invoke(main, ["--database-url", url, "db", "upgrade"],
                                    env={"VOICEMAP_SECRET_KEY": "test-secret"})
        assert result.exit_code == 1
        assert "cannot upgrade from 0099_future" in result.output
        assert revision(url) == "0099_future"


# --- one process at a time -----------------------------------------------------------------


def upgrade_process(url: str, tmp_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEMAP_")}
    env.update(VOICEMAP_SECRET_KEY="test-secret", VOICEMAP_MEDIA_DIR=str(tmp_path / "media"))
    return subprocess.Popen([sys.executable, "-m", "voicemap.cli", "--database-url", url,
                             "db", "upgrade"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_concurrent_upgrades_migrate_once(backend, tmp_path):
    """Two processes starting at once (two hosts, two workers): one migrates."""
    with database(backend, tmp_path) as url:
        procs = [upgrade_process(url, tmp_path) for _ in range(2)]
        try:
            results = [proc.communicate(timeout=120) for proc in procs]
        finally:  # a failure here leaves no process (or its pipes) for later tests to meet
            for proc in procs:
                proc.kill()
                proc.communicate()
        for proc, (_out, err) in zip(procs, results, strict=True):
            assert proc.returncode == 0, err
        outs = [out for out, _err in results]
        assert sum("upgraded from empty" in out for out in outs) == 1, outs
        assert sum("nothing to do" in out for out in outs) == 1, outs
        assert revision(url) == db.head_revision()


def test_upgrade_waits_for_the_migration_lock(backend, tmp_path):
    """While another connection holds the lock, an upgrade waits, then does the work."""
    with database(backend, tmp_path) as url:
        engine = db.make_engine(url)
        if backend == "spatialite":  # another process's write transaction
            holder = engine.raw_connection()
            holder.driver_connection.execute("BEGIN IMMEDIATE")
            release = lambda: holder.driver_connection.execute("COMMIT")  # noqa: E731
        else:  # another process's migration
            holder = psycopg.connect(url.replace("+psycopg", ""), autocommit=True)
            holder.execute("SELECT pg_advisory_lock(%s)", (db.MIGRATION_LOCK_KEY,))
            release = lambda: holder.execute(  # noqa: E731
                "SELECT pg_advisory_unlock(%s)", (db.MIGRATION_LOCK_KEY,))
        results: list = []

        def upgrade():
            other = db.make_engine(url)
            try:
                results.append(db.upgrade(other))
            except BaseException as exc:
                results.append(exc)
            finally:
                other.dispose()

        thread = threading.Thread(target=upgrade)
        try:
            thread.start()
            if backend == "postgis":  # it is queued for the advisory lock
                for _ in range(100):
                    if holder.execute("SELECT count(*) FROM pg_locks WHERE locktype = "
                                      "'advisory' AND NOT granted").fetchone()[0]:
                        break
                    time.sleep(0.1)
                else:
                    pytest.fail("the upgrade never asked for the advisory lock")
            thread.join(1.5)
            assert thread.is_alive(), results
            assert not results, results
            assert revision(url) is None
        finally:
            release()
            thread.join(60)
            holder.close()
            engine.dispose()
        assert not thread.is_alive()
        [result] = results
        assert (result.before, result.after) == (None, db.head_revision()), result
        assert revision(url) == db.head_revision()
