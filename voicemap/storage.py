"""Where media bytes live: one content-addressed store, on a local directory or in any
S3-compatible object store.

Every file is named by the SHA-256 of its bytes under its kind: ``published/ab/<sha256>.mp3``
holds the processed files families stream; ``renditions/ab/<sha256>`` the images made from a
child's work; ``originals/ab/<sha256>`` keeps each upload as received, privately, as the
archive copy. The same bytes are stored once.

- ``MediaStore`` (the default) keeps them in a directory. Writes are atomic: a temporary file
  in the same directory, fsync, rename, and an fsync of the directory, so a crash never
  leaves a half-written file under a real name.
- ``S3Store`` (``VOICEMAP_MEDIA_URL=s3://bucket/prefix``) keeps them as objects through
  boto3. An object appears only when its upload completes, so none is ever half-written.

Storing a file and committing the row that refers to it happen under a lock on the file's
hash, and so do deciding that a file is unreferenced and deleting it; so a deletion never
removes a file that a concurrent upload of the same bytes is about to use. The locks follow
the database: PostgreSQL advisory locks (several app hosts share them), or lock files on
this host for the embedded SpatiaLite database (which only one host can use anyway).

Work in progress (an upload being received, audio being processed) happens in a scratch
directory on the local disk, whatever the store.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# ``renditions`` are the images made from a child's work (thumbnail, display size); their
# media type is kept by the row that names them, so the file has no suffix.
KINDS = {"published": ".mp3", "originals": "", "renditions": ""}
GRACE_S = 2.0  # a temporary this young may not be locked by its process yet (a µs race)
SWEEP_EVERY_S = 600.0  # how often each process looks for abandoned temporaries
CHUNK = 64 * 1024

log = logging.getLogger(__name__)


def check_hash(kind: str, sha256: str) -> None:
    """ValueError unless ``kind`` is known and ``sha256`` is a lowercase hex digest."""
    if kind not in KINDS:
        raise ValueError(f"unknown media kind {kind!r}")
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")


# --- locks -----------------------------------------------------------------------------------


class FileLocks:
    """Locks on hashes across the processes of this host: one lock file per two-hex-digit
    prefix, taken in one order, so two holders never deadlock."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @contextmanager
    def hold(self, hashes: Iterable[str]) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fds = []
        try:
            for prefix in sorted({sha[:2] for sha in hashes}):
                fd = os.open(self.directory / f"{prefix}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                fds.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            for fd in reversed(fds):
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


class AdvisoryLocks:
    """Locks on hashes across every host that shares the PostgreSQL database: session
    advisory locks on a connection of their own, keyed by the hash's first 64 bits, taken
    in one order. If the holder dies, the server releases them with its connection."""

    def __init__(self, engine) -> None:
        self.engine = engine

    @contextmanager
    def hold(self, hashes: Iterable[str]) -> Iterator[None]:
        from sqlalchemy import text

        keys = sorted({int.from_bytes(bytes.fromhex(sha[:16]), "big", signed=True)
                       for sha in hashes})
        with self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            taken = []
            try:
                for key in keys:
                    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                    taken.append(key)
                yield
            finally:
                for key in reversed(taken):
                    try:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    except Exception:  # the connection broke: the server released it
                        log.warning("could not release media lock %s", key)
                        break


# --- the stores ------------------------------------------------------------------------------


class Store:
    """What every media store does; subclasses keep the bytes somewhere."""

    def __init__(self, scratch_root: Path, locks: Any) -> None:
        self.scratch_root = Path(scratch_root)
        self.locks = locks

    # where the bytes are (subclasses)

    def put(self, kind: str, src: str | Path, sha: str | None = None) -> tuple[str, bool]:
        """Store a copy of ``src``; its sha256 and whether this call created the file.
        Callers that share files between rows hold ``locked(sha)`` around this and their
        commit."""
        raise NotImplementedError

    def delete(self, kind: str, sha256: str) -> bool:
        """Remove the file; True if it was there."""
        raise NotImplementedError

    def exists(self, kind: str, sha256: str) -> bool:
        raise NotImplementedError

    def size(self, kind: str, sha256: str) -> int | None:
        """The file's size in bytes, or None if it is not there."""
        raise NotImplementedError

    def hashes(self, kind: str) -> Iterator[str]:
        """The hashes of every stored file of this kind."""
        raise NotImplementedError

    def read_range(self, kind: str, sha256: str, start: int, stop: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``stop`` (exclusive) of the file, in chunks, never whole."""
        raise NotImplementedError

    def fetch(self, kind: str, sha256: str, dest: Path) -> Path:
        """Copy the file to ``dest`` (a local path)."""
        with open(dest, "wb") as out:
            for chunk in self.read_range(kind, sha256, 0, self.size(kind, sha256) or 0):
                out.write(chunk)
        return dest

    def local_path(self, kind: str, sha256: str) -> Path | None:
        """The file's path when it lives on this host's disk (served with sendfile)."""
        return None

    def describe(self, kind: str, sha256: str) -> str:
        """Where the file is, for messages."""
        raise NotImplementedError

    def probe(self) -> None:
        """Write, read back and remove a small object: OSError when the store cannot take a
        write (full disk, read-only, unreachable)."""
        raise NotImplementedError

    # locks and scratch space (shared)

    @contextmanager
    def locked(self, *hashes: str) -> Iterator[None]:
        """Hold an exclusive lock on these hashes (see the module's docstring)."""
        for sha in hashes:
            check_hash("published", sha)
        with self.locks.hold(hashes):
            yield

    def tmp_dir(self) -> Path:
        """Scratch space on this host's disk (uploads are staged here)."""
        self.scratch_root.mkdir(parents=True, exist_ok=True)
        return self.scratch_root

    @contextmanager
    def scratch(self, prefix: str) -> Iterator[Path]:
        """A private working directory in the scratch space, removed when the block ends.

        It holds a child's unprocessed recording, so it must not outlive its process: the
        process holds a lock on it while it works, and ``abandoned_temporaries`` treats an
        unlocked one as left behind by a process that died (killed mid-upload), at once.
        """
        path = Path(tempfile.mkdtemp(dir=self.tmp_dir(), prefix=prefix))
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
            os.close(fd)

    def _temporaries(self) -> list[Path]:
        if self.scratch_root.is_dir():
            return list(self.scratch_root.iterdir())
        return []

    def abandoned_temporaries(self, grace_s: float = GRACE_S) -> Iterator[Path]:
        """Leftovers of interrupted work: scratch directories (and half-written files) that
        no live process holds locked.

        Entries younger than ``grace_s`` are passed over: between creating one and locking
        it, its process holds no lock yet. Locks are per host, which is where scratch is.
        """
        cutoff = time.time() - grace_s
        for path in self._temporaries():
            try:
                if path.lstat().st_mtime >= cutoff:
                    continue
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:  # gone meanwhile, or a link: not ours to judge
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process is working in it
            finally:
                os.close(fd)
            yield path

    def remove_abandoned(self) -> list[Path]:
        """Delete what ``abandoned_temporaries`` finds; the paths removed."""
        removed = []
        for path in self.abandoned_temporaries():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
        return removed


class MediaStore(Store):
    """Content-addressed files in a directory (the default)."""

    def __init__(self, root: str | Path, locks: Any = None) -> None:
        self.root = Path(root)
        super().__init__(self.root / "tmp", locks or FileLocks(self.root / "locks"))

    def path(self, kind: str, sha256: str) -> Path:
        """Where the file with this hash lives (whether or not it exists)."""
        check_hash(kind, sha256)
        return self.root / kind / sha256[:2] / (sha256 + KINDS[kind])

    def local_path(self, kind: str, sha256: str) -> Path:
        return self.path(kind, sha256)

    def describe(self, kind: str, sha256: str) -> str:
        return str(self.path(kind, sha256))

    def put(self, kind: str, src: str | Path, sha: str | None = None) -> tuple[str, bool]:
        sha = sha or file_sha256(src)
        dest = self.path(kind, sha)
        if dest.exists():
            return sha, False
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".put-")
        fcntl.flock(fd, fcntl.LOCK_EX)  # live while locked (see abandoned_temporaries)
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
                shutil.copyfileobj(inp, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644 if kind == "published" else 0o600)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(dest.parent)
        return sha, True

    def delete(self, kind: str, sha256: str) -> bool:
        path = self.path(kind, sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True

    def exists(self, kind: str, sha256: str) -> bool:
        return self.path(kind, sha256).is_file()

    def size(self, kind: str, sha256: str) -> int | None:
        try:
            return self.path(kind, sha256).stat().st_size
        except FileNotFoundError:
            return None

    def hashes(self, kind: str) -> Iterator[str]:
        base = self.root / kind
        if not base.is_dir():
            return
        suffix = KINDS[kind]
        for sub in sorted(base.iterdir()):
            if not sub.is_dir():
                continue
            for f in sorted(sub.iterdir()):
                if f.name.startswith("."):
                    continue
                name = f.name[: -len(suffix)] if suffix and f.name.endswith(suffix) else f.name
                if len(name) == 64:
                    yield name

    def read_range(self, kind: str, sha256: str, start: int, stop: int) -> Iterator[bytes]:
        with open(self.path(kind, sha256), "rb") as fh:
            fh.seek(start)
            left = stop - start
            while left > 0 and (chunk := fh.read(min(CHUNK, left))):
                left -= len(chunk)
                yield chunk

    def probe(self) -> None:
        with self.scratch("probe-") as work:
            test = work / "probe"
            with open(test, "wb") as fh:
                fh.write(os.urandom(4096))
                fh.flush()
                os.fsync(fh.fileno())
            if test.stat().st_size != 4096:
                raise OSError(errno.EIO, "media store probe came back short", str(test))

    def _temporaries(self) -> list[Path]:
        found = super()._temporaries()
        for kind in KINDS:
            base = self.root / kind
            if base.is_dir():
                found += base.glob("*/.put-*")
        return found


class S3Store(Store):
    """Content-addressed objects in an S3-compatible bucket, under a prefix."""

    def __init__(self, url: str, *, endpoint_url: str | None, scratch_root: Path,
                 locks: Any) -> None:
        import boto3
        from botocore.config import Config

        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"VOICEMAP_MEDIA_URL must look like s3://bucket/prefix, got {url!r}")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/") + "/" if parts.path.strip("/") else ""
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None, config=Config(
            retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5,
            read_timeout=30, s3={"addressing_style": "path"}))
        self._sizes: dict[str, int] = {}
        super().__init__(scratch_root, locks)

    def key(self, kind: str, sha256: str) -> str:
        check_hash(kind, sha256)
        return f"{self.prefix}{kind}/{sha256[:2]}/{sha256}{KINDS[kind]}"

    def describe(self, kind: str, sha256: str) -> str:
        return f"s3://{self.bucket}/{self.key(kind, sha256)}"

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def put(self, kind: str, src: str | Path, sha: str | None = None) -> tuple[str, bool]:
        sha = sha or file_sha256(src)
        key = self.key(kind, sha)
        if self._head(key) is not None:
            return sha, False
        content_type = "audio/mpeg" if kind == "published" else "application/octet-stream"
        self.client.upload_file(str(src), self.bucket, key,
                                ExtraArgs={"ContentType": content_type})
        return sha, True

    def delete(self, kind: str, sha256: str) -> bool:
        key = self.key(kind, sha256)
        self._sizes.pop(key, None)
        if self._head(key) is None:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def exists(self, kind: str, sha256: str) -> bool:
        return self._head(self.key(kind, sha256)) is not None

    def size(self, kind: str, sha256: str) -> int | None:
        # Objects are named by their content, so a size once seen never changes: remember
        # it, and serving a clip costs one request to the store (GET), not two (HEAD, GET).
        key = self.key(kind, sha256)
        known = self._sizes.get(key)
        if known is not None:
            return known
        head = self._head(key)
        if head is None:
            return None
        if len(self._sizes) > 100_000:
            self._sizes.clear()
        self._sizes[key] = int(head["ContentLength"])
        return self._sizes[key]

    def hashes(self, kind: str) -> Iterator[str]:
        base = f"{self.prefix}{kind}/"
        suffix = KINDS[kind]
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base)
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                name = name[: -len(suffix)] if suffix and name.endswith(suffix) else name
                if len(name) == 64:
                    yield name

    def read_range(self, kind: str, sha256: str, start: int, stop: int) -> Iterator[bytes]:
        # The object is asked for now, before any byte of a response goes out: a missing
        # object is FileNotFoundError (404) and a store that fails is the caller's 503.
        if stop <= start:
            return iter(())
        from botocore.exceptions import ClientError

        key = self.key(kind, sha256)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key,
                                          Range=f"bytes={start}-{stop - 1}")["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                self._sizes.pop(key, None)
                raise FileNotFoundError(key) from None
            raise

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(4 * CHUNK)
            finally:
                body.close()

        return chunks()

    def probe(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = f"{self.prefix}.probe/{uuid.uuid4().hex}"
        data = os.urandom(1024)
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
            back = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise OSError(errno.EIO, f"object store: {exc}") from exc
        if back != data:
            raise OSError(errno.EIO, "object store probe came back different")


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_store(config: dict[str, Any], engine=None) -> Store:
    """The store the settings name: ``MEDIA_URL`` (s3://...) or the ``MEDIA_DIR`` directory;
    advisory locks when ``engine`` is PostgreSQL, lock files on this host otherwise."""
    url = config.get("MEDIA_URL") or ""
    pg = engine is not None and engine.dialect.name == "postgresql"
    if url.startswith("s3://"):
        scratch = Path(config["MEDIA_SCRATCH_DIR"])
        locks = AdvisoryLocks(engine) if pg else FileLocks(scratch.parent / "media-locks")
        return S3Store(url, endpoint_url=config.get("S3_ENDPOINT_URL") or None,
                       scratch_root=scratch, locks=locks)
    if url:
        raise ValueError(f"VOICEMAP_MEDIA_URL must be empty (use VOICEMAP_MEDIA_DIR) or "
                         f"s3://bucket/prefix, got {url!r}")
    root = Path(config["MEDIA_DIR"])
    return MediaStore(root, AdvisoryLocks(engine) if pg else None)


def init_app(app) -> None:
    """Give the app its media store; remove what crashed processes left in its scratch
    space at start-up, and every ``SWEEP_EVERY_S`` after that."""
    store = open_store(app.config, app.extensions.get("voicemap.engine"))
    app.extensions["voicemap.media"] = store
    last_sweep = [0.0]

    def sweep() -> None:
        last_sweep[0] = time.monotonic()
        try:
            for path in store.remove_abandoned():
                log.warning("removed an abandoned temporary (a child's unprocessed upload?): "
                            "%s", path)
        except OSError as exc:  # never fail a request over housekeeping
            log.warning("could not sweep the media store's temporaries: %s", exc)

    if not app.config.get("SWEEP_TEMPORARIES", True):
        return  # the command line: fsck reports them, fsck --repair removes them
    sweep()

    @app.before_request
    def sweep_now_and_then() -> None:
        if time.monotonic() - last_sweep[0] > SWEEP_EVERY_S:
            sweep()


def media_store() -> Store:
    """The current app's media store."""
    from flask import current_app

    return current_app.extensions["voicemap.media"]
