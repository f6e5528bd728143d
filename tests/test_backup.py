"""voicemap backup / restore / backup --verify: a round trip on both backends brings back the
same API answers and the same media bytes; a damaged archive restores nothing."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import BufferedClient, throwaway_postgis
from helpers import ROOT_DATA, published_clip, speech

from voicemap import auth, create_app, db
from voicemap.cli import main


def invoke(url: str, media: Path, *args: str):
    return CliRunner().invoke(main, ["--database-url", url, *args], catch_exceptions=False,
                              env={"VOICEMAP_MEDIA_DIR": str(media),
                                   "VOICEMAP_SECRET_KEY": "t"})


@pytest.fixture
def filled(app, runner, tmp_path):
    """The registry, a manager, a published and a pending clip."""
    assert runner.invoke("import", str(ROOT_DATA)).exit_code == 0
    venue = "palace-museum"
    published = published_clip(app, venue, "zh")
    with app.app_context(), db.session_scope() as s:
        token = auth.create_manager(s, "Alice", [venue])[1]
    src = speech(tmp_path / "rec", "pending.m4a", "en")
    with src.open("rb") as fh:
        r = app.test_client().post(
            f"/api/venues/{venue}/clips", headers={"Authorization": f"Bearer {token}"},
            data={"file": (fh, "pending.m4a"), "lang": "en", "narrator_name": "Lily",
                  "narrator_age": "9", "transcript": "Hello", "consent": "true",
                  "consent_by": "Parent"})
    assert r.status_code == 201
    return {"venue": venue, "published": published, "pending": r.get_json(), "token": token}


def answers(app, filled) -> dict:
    """What the API says, for comparison: the registry, clips (public and the manager's),
    and the audio bytes."""
    app.test_client_class = BufferedClient
    client = app.test_client()
    venue, auth_header = filled["venue"], {"Authorization": f"Bearer {filled['token']}"}
    out = {
        "venues": client.get("/api/venues").get_data(),
        "venue": client.get(f"/api/venues/{venue}").get_json(force=True),
        "public": client.get(f"/api/venues/{venue}/clips").get_json(),
        "manager": client.get(f"/api/venues/{venue}/clips", headers=auth_header).get_json(),
        "audio": client.get(filled["published"]["audio_url"]).get_data(),
    }
    assert out["manager"]["clips"], "the manager's token works and sees the pending clip"
    assert len(out["audio"]) > 1000
    return out


def fresh_database(backend: str, tmp_path: Path):
    if backend == "spatialite":
        from contextlib import nullcontext

        return nullcontext(f"sqlite:///{tmp_path / 'restored.sqlite'}")
    return throwaway_postgis("voicemap_restore")


def test_round_trip_brings_back_the_same_answers_and_bytes(app, filled, backend, tmp_path):
    before = answers(app, filled)
    archive = tmp_path / "backup.tar"
    made = invoke(app.config["DATABASE_URL"], Path(app.config["MEDIA_DIR"]),
                  "backup", "-o", str(archive))
    assert made.exit_code == 0, made.output
    assert "4 media files" in made.output  # two clips, each an MP3 and an original
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    checked = invoke(app.config["DATABASE_URL"], Path(app.config["MEDIA_DIR"]),
                     "backup", "--verify", str(archive))
    assert checked.exit_code == 0
    assert "intact" in checked.output

    with fresh_database(backend, tmp_path) as url:
        media = tmp_path / "restored-media"
        restored = invoke(url, media, "restore", str(archive))
        assert restored.exit_code == 0, restored.output
        again = create_app({"TESTING": True, "DATABASE_URL": url, "MEDIA_DIR": str(media),
                            "SECRET_KEY": "t"})
        try:
            after = answers(again, filled)
        finally:
            again.extensions["voicemap.engine"].dispose()
        assert after == before
        originals = sorted(p.name for p in (media / "originals").rglob("*") if p.is_file())
        assert originals == sorted(p.name for p in (Path(app.config["MEDIA_DIR"]) /
                                                     "originals").rglob("*") if p.is_file())
        # A second restore into what is now not empty is refused.
        twice = invoke(url, media, "restore", str(archive))
        assert twice.exit_code == 1
        assert "not empty" in twice.output


def test_a_damaged_archive_is_found_and_restores_nothing(app, filled, backend, tmp_path):
    archive = tmp_path / "backup.tar"
    assert invoke(app.config["DATABASE_URL"], Path(app.config["MEDIA_DIR"]),
                  "backup", "-o", str(archive)).exit_code == 0
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        member = next(m for m in manifest["members"] if m["name"].startswith("media/"))
        offset = tar.getmember(member["name"]).offset_data
    data = bytearray(archive.read_bytes())
    data[offset + 200] ^= 0xFF  # one flipped bit in a recording
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(bytes(data))
    checked = invoke(app.config["DATABASE_URL"], Path(app.config["MEDIA_DIR"]),
                     "backup", "--verify", str(damaged))
    assert checked.exit_code == 1
    assert member["name"] in checked.output
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    assert invoke(app.config["DATABASE_URL"], Path(app.config["MEDIA_DIR"]),
                  "backup", "--verify", str(truncated)).exit_code == 1

    with fresh_database(backend, tmp_path) as url:
        media = tmp_path / "restored-media"
        result = invoke(url, media, "restore", str(damaged))
        assert result.exit_code == 1
        assert "damaged" in result.output
        assert not media.exists() or not any(p.is_file() for p in media.rglob("*")
                                             if "locks" not in p.parts)


def test_every_table_of_the_models_is_counted_and_checked_by_a_restore():
    """A restore refuses a database that holds rows in any of ``TABLES`` and the manifest
    counts them: a new table must be listed, or a restore could merge into its rows."""
    from voicemap.backup import TABLES
    from voicemap.models import Base

    assert set(Base.metadata.tables) == set(TABLES)
