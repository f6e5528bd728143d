"""Backups: one archive with a consistent database snapshot and every media file it refers
to, checked by a manifest of SHA-256 checksums; restore into an empty database and store.

The archive is a plain tar (audio does not compress), written and read as a stream, so
neither backup nor restore holds the registry or a recording in memory:

    database/voicemap.sqlite   SQLite's online backup of a SpatiaLite database, or
    database/voicemap.pgdump   pg_dump's custom format (taken in one exported snapshot)
    media/<kind>/<ab>/<sha256> every file a row of the snapshot refers to
    manifest.json              last: format, backend, counts, and each member's size and hash

Taking a backup does not stop the service: SQLite's backup API reads a snapshot while others
write (WAL); pg_dump reads one MVCC snapshot, the same one the list of media files comes from.
A file deleted between the snapshot and its copy (consent withdrawn meanwhile) is left out and
listed; restoring drops the rows that referred to it, so a withdrawal is never undone.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, text

from .db import sqlite_dbapi
from .errors import BadRequest, Conflict
from .storage import KINDS, Store, file_sha256
from .version import __version__

FORMAT = "voicemap-backup/1"
# The rows a restore brings back.
TABLES = ("venues", "managers", "manager_venues", "clips", "campaigns", "works", "activities",
          "activity_cancellations", "articles", "article_images", "play_counts", "scores")
# Which columns of which tables name media files, by kind. Features that store media add
# their columns here, so that backups, restores and fsck know every file.
MEDIA_REFERENCES: dict[str, list[tuple[str, str]]] = {
    "published": [("clips", "audio_sha256"), ("works", "audio_sha256")],
    "originals": [("clips", "original_sha256"), ("works", "original_sha256")],
    "renditions": [("works", "thumb_sha256"), ("works", "display_sha256"),
                   ("article_images", "id")],
}


def is_referenced(conn, kind: str, sha256: str) -> bool:
    """Whether any row (a clip, a work, ...) names this file; ``conn`` is a session or a
    connection, so the answer is its transaction's."""
    for table, column in MEDIA_REFERENCES.get(kind, []):
        found = conn.execute(text(f"SELECT 1 FROM {table} WHERE {column} = :sha LIMIT 1"),
                             {"sha": sha256}).first()
        if found is not None:
            return True
    return False


def file_owners(conn) -> list[tuple[str, str, str, str]]:
    """Every (table, row id, kind, sha256) that names a media file."""
    out = []
    for kind, columns in MEDIA_REFERENCES.items():
        for table, column in columns:
            rows = conn.execute(text(f"SELECT id, {column} FROM {table} "
                                     f"WHERE {column} IS NOT NULL"))
            out += [(table, row_id, kind, sha) for row_id, sha in rows]
    return out


@dataclass
class BackupReport:
    path: Path
    backend: str
    files: int = 0
    bytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    withdrawn: list[str] = field(default_factory=list)  # files deleted during the backup
    seconds: float = 0.0


@dataclass
class VerifyReport:
    manifest: dict[str, Any]
    members: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- backup ----------------------------------------------------------------------------------


def backup(engine: Engine, store: Store, output: Path) -> BackupReport:
    """Write the archive to ``output`` (through a temporary name, renamed when complete)."""
    started = time.monotonic()
    backend = engine.dialect.name
    output = Path(output)
    report = BackupReport(path=output, backend=backend)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    members: list[dict[str, Any]] = []
    try:
        # 0600 from the first byte: the archive holds children's voices and guardians' names.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with tempfile.TemporaryDirectory(prefix="voicemap-backup-") as work, \
                os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w|") as tar:
            with _snapshot(engine, Path(work)) as (dump, references, rows):
                report.rows = rows
                members.append(_add_file(tar, dump, f"database/{dump.name}"))
            for kind, sha in references:
                name = f"media/{kind}/{sha[:2]}/{sha}"
                size = store.size(kind, sha)
                if size is None:
                    report.withdrawn.append(f"{kind}/{sha}")
                    continue
                members.append(_add_stream(tar, name, size,
                                           store.read_range(kind, sha, 0, size)))
                report.files += 1
                report.bytes += size
            manifest = {"format": FORMAT, "voicemap": __version__, "backend": backend,
                        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "schema": _schema_revision(engine), "rows": rows,
                        "withdrawn_during_backup": report.withdrawn, "members": members}
            body = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime, info.mode = len(body), int(time.time()), 0o600
            tar.addfile(info, io.BytesIO(body))
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    report.seconds = time.monotonic() - started
    return report


@contextmanager
def _snapshot(engine: Engine, work: Path) -> Iterator[tuple[Path, list[tuple[str, str]],
                                                             dict[str, int]]]:
    """A consistent database snapshot file, the media files it refers to, its row counts."""
    if engine.dialect.name == "sqlite":
        dump = work / "voicemap.sqlite"
        source = engine.raw_connection()
        try:
            # Through read() calls, not the engine's memory map: the map would make the
            # whole file count as this process's memory (and the copy streams anyway).
            source.driver_connection.execute("PRAGMA mmap_size = 0")
            copy = sqlite_dbapi().connect(str(dump))
            try:
                source.driver_connection.backup(copy)
            finally:
                copy.close()
        finally:
            source.close()
        # The snapshot file is what the archive holds: read references from it, not live.
        copy = sqlite_dbapi().connect(str(dump))
        try:
            yield dump, _references(copy.cursor()), _counts(copy.cursor())
        finally:
            copy.close()
        return
    # PostgreSQL: export the snapshot of a repeatable-read transaction; pg_dump reads the
    # same one, and so do the media references.
    dump = work / "voicemap.pgdump"
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            cur = conn.connection.driver_connection.cursor()
            references, rows = _references(cur), _counts(cur)
            _pg_dump(engine, snapshot, dump)
            yield dump, references, rows


def _pg_dump(engine: Engine, snapshot: str, dump: Path) -> None:
    exe = shutil.which("pg_dump")
    if exe is None:
        raise BadRequest("pg_dump is not installed (Debian: postgresql-client)")
    env, args = _pg_env(engine)
    result = subprocess.run([exe, "--format=custom", "--no-owner", "--no-privileges",
                             f"--snapshot={snapshot}", f"--file={dump}", *args],
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pg_dump failed: {result.stderr.strip()[-500:]}")


def _pg_env(engine: Engine) -> tuple[dict[str, str], list[str]]:
    """Connection settings for PostgreSQL's own tools, the password in the environment."""
    u = engine.url
    env = {**os.environ}
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    args = [f"--dbname={u.database}"]
    if u.host:
        args.append(f"--host={u.host}")
    if u.port:
        args.append(f"--port={u.port}")
    if u.username:
        args.append(f"--username={u.username}")
    return env, args


def _references(cur) -> list[tuple[str, str]]:
    """Every (kind, sha256) a row refers to, in a stable order."""
    found: set[tuple[str, str]] = set()
    for kind, columns in MEDIA_REFERENCES.items():
        for table, column in columns:
            cur.execute(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL")
            found.update((kind, row[0]) for row in cur.fetchall())
    return sorted(found)


def _counts(cur) -> dict[str, int]:
    out = {}
    for table in TABLES:
        cur.execute(f"SELECT count(*) FROM {table}")
        out[table] = int(cur.fetchone()[0])
    return out


def _schema_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # no migrations table: a schema made before migrations existed
        return None


class _Hashing(io.RawIOBase):
    """Reads chunks from an iterator, hashing them on the way."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks, self.buffer, self.hash, self.count = chunks, b"", hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, out) -> int:
        while not self.buffer:
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self.buffer = chunk
        n = min(len(out), len(self.buffer))
        out[:n], self.buffer = self.buffer[:n], self.buffer[n:]
        self.hash.update(out[:n])
        self.count += n
        return n


def _add_stream(tar: tarfile.TarFile, name: str, size: int, chunks: Iterator[bytes]
                ) -> dict[str, Any]:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(time.time()), 0o600
    reader = _Hashing(chunks)
    tar.addfile(info, io.BufferedReader(reader, 1 << 20))
    if reader.count != size:
        raise RuntimeError(f"{name}: read {reader.count} bytes, expected {size}")
    return {"name": name, "size": size, "sha256": reader.hash.hexdigest()}


def _add_file(tar: tarfile.TarFile, path: Path, name: str) -> dict[str, Any]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        return _add_stream(tar, name, size, iter(lambda: fh.read(1 << 20), b""))


# --- verify ----------------------------------------------------------------------------------


def _members(archive: Path) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    with tarfile.open(archive, mode="r|") as tar:
        for info in tar:
            yield info, tar.extractfile(info) if info.isfile() else None


@contextmanager
def _reading(archive: Path) -> Iterator[None]:
    """A truncated or garbled archive says so, as the user's error, not a traceback."""
    try:
        yield
    except (tarfile.TarError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"{archive} is damaged or not a voicemap backup: {exc}") from None


def verify(archive: Path) -> VerifyReport:
    """Check every member against the manifest (sizes and SHA-256), and that nothing the
    manifest lists is missing or extra."""
    seen: dict[str, tuple[int, str]] = {}
    manifest = None
    with _reading(archive):
        for info, fh in _members(Path(archive)):
            if fh is None:
                continue
            if info.name == "manifest.json":
                manifest = json.loads(fh.read())
                continue
            h = hashlib.sha256()
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
            seen[info.name] = (info.size, h.hexdigest())
    if manifest is None or manifest.get("format") != FORMAT:
        raise BadRequest(f"{archive} has no voicemap manifest ({FORMAT})")
    report = VerifyReport(manifest=manifest, members=len(seen))
    listed = {m["name"]: m for m in manifest["members"]}
    for name, entry in listed.items():
        if name not in seen:
            report.problems.append(f"{name}: missing from the archive")
        elif seen[name] != (entry["size"], entry["sha256"]):
            report.problems.append(f"{name}: checksum or size differs from the manifest")
    report.problems += [f"{name}: not in the manifest" for name in seen if name not in listed]
    return report


# --- restore ---------------------------------------------------------------------------------


def restore(engine: Engine, store: Store, archive: Path) -> dict[str, Any]:
    """Bring back the archive's state into an empty database and an empty media store.

    The archive is verified first; nothing is written unless it is whole and matches this
    backend. Media go in first, then the database in one step, so a failure leaves at most
    unreferenced files (which ``fsck --repair`` removes), never a row without its file.
    """
    archive = Path(archive)
    checked = verify(archive)
    if not checked.ok:
        raise BadRequest("the archive is damaged, nothing restored: "
                         + "; ".join(checked.problems[:5]))
    manifest = checked.manifest
    if manifest["backend"] != engine.dialect.name:
        raise BadRequest(f"this archive holds a {manifest['backend']} database; restore it "
                         f"into the same kind (VOICEMAP_DATABASE_URL is {engine.dialect.name})")
    _require_empty(engine, store)
    restored = 0
    with store.scratch("restore-") as work:  # locked: the servers' sweep leaves it alone
        dump = None
        with _reading(archive):
            for info, fh in _members(archive):
                if fh is None:
                    continue
                if info.name.startswith("database/"):
                    dump = Path(work) / Path(info.name).name
                    with open(dump, "wb") as out:
                        shutil.copyfileobj(fh, out, 1 << 20)
                elif info.name.startswith("media/"):
                    _, kind, _, sha = info.name.split("/")
                    if kind not in KINDS:
                        raise BadRequest(f"unknown media kind in the archive: {kind}")
                    tmp = Path(work) / "media"
                    with open(tmp, "wb") as out:
                        shutil.copyfileobj(fh, out, 1 << 20)
                    if file_sha256(tmp) != sha:  # changed since it was verified
                        raise BadRequest(f"{info.name} changed while it was being restored")
                    store.put(kind, tmp, sha)
                    tmp.unlink()
                    restored += 1
        if dump is None:
            raise BadRequest("the archive has no database snapshot")
        if engine.dialect.name == "sqlite":
            _restore_sqlite(engine, dump)
        else:
            _restore_postgres(engine, dump)
    dropped = _drop_withdrawn(engine, manifest.get("withdrawn_during_backup", []))
    # An archive of an older release comes back at its own revision: bring it to this one.
    from .db import init_schema

    migrated = init_schema(engine)
    return {"files": restored, "rows": manifest["rows"], "dropped_withdrawn": dropped,
            "schema": manifest.get("schema"), "schema_now": migrated.after}


def _require_empty(engine: Engine, store: Store) -> None:
    from sqlalchemy import inspect

    with engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
        for table in TABLES:
            if table in present and conn.execute(
                    text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None:
                raise Conflict(f"the database is not empty ({table} has rows): restore into "
                               "an empty database")
    for kind in KINDS:
        if next(iter(store.hashes(kind)), None) is not None:
            raise Conflict(f"the media store is not empty ({kind}): restore into an empty one")


def _restore_sqlite(engine: Engine, dump: Path) -> None:
    engine.dispose()  # no pooled connection may see the file change under it
    target = engine.raw_connection()
    try:
        source = sqlite_dbapi().connect(str(dump))
        try:
            source.backup(target.driver_connection)
        finally:
            source.close()
    finally:
        target.close()
    engine.dispose()


def _restore_postgres(engine: Engine, dump: Path) -> None:
    exe = shutil.which("pg_restore")
    if exe is None:
        raise BadRequest("pg_restore is not installed (Debian: postgresql-client)")
    env, args = _pg_env(engine)
    engine.dispose()
    result = subprocess.run([exe, "--clean", "--if-exists", "--no-owner", "--no-privileges",
                             "--single-transaction", "--exit-on-error", *args, str(dump)],
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pg_restore failed: {result.stderr.strip()[-800:]}")


def _drop_withdrawn(engine: Engine, withdrawn: list[str]) -> int:
    """Delete the rows whose files were withdrawn while the backup ran."""
    dropped = 0
    with engine.begin() as conn:
        for item in withdrawn:
            kind, sha = item.split("/")
            for table, column in MEDIA_REFERENCES.get(kind, []):
                dropped += conn.execute(text(f"DELETE FROM {table} WHERE {column} = :sha"),
                                        {"sha": sha}).rowcount
    return dropped
