"""Where media bytes live: content-addressed files under the media directory.

``published/ab/<sha256>.mp3`` holds the processed files families stream; ``originals/ab/
<sha256>`` keeps each upload as received, privately, as the archive copy. The same bytes are
stored once. Writes are atomic: a temporary file in the same directory, fsync, rename, and
an fsync of the directory, so a crash never leaves a half-written file under a real name.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

KINDS = {"published": ".mp3", "originals": ""}


class MediaStore:
    """Content-addressed files of two kinds, ``published`` and ``originals``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, kind: str, sha256: str) -> Path:
        """Where the file with this hash lives (whether or not it exists)."""
        if kind not in KINDS:
            raise ValueError(f"unknown media kind {kind!r}")
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / kind / sha256[:2] / (sha256 + KINDS[kind])

    @contextmanager
    def locked(self, *hashes: str) -> Iterator[None]:
        """Hold an exclusive lock on these hashes (across processes on this host).

        Storing a file and committing the row that refers to it happen under the lock, and so
        do deciding that a file is unreferenced and unlinking it; so a deletion can never
        remove a file that a concurrent upload of the same bytes is about to use.
        """
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        fds = []
        try:
            for sha in hashes:
                self.path("published", sha)  # validates the hash
            # One lock file per two-hex-digit prefix, taken in one order: no deadlock.
            for prefix in sorted({sha[:2] for sha in hashes}):
                fd = os.open(locks / f"{prefix}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                fds.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            for fd in reversed(fds):
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def tmp_dir(self) -> Path:
        """A scratch directory on the same filesystem (uploads are staged here)."""
        path = self.root / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def put(self, kind: str, src: str | Path, sha: str | None = None) -> tuple[str, bool]:
        """Store a copy of ``src``; return its sha256 and whether this call created the file.

        Callers that share files between rows hold ``locked(sha)`` around this and their commit.
        """
        sha = sha or file_sha256(src)
        dest = self.path(kind, sha)
        if dest.exists():
            return sha, False
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".put-")
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
        """Remove the file; True if it was there."""
        path = self.path(kind, sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True

    def exists(self, kind: str, sha256: str) -> bool:
        return self.path(kind, sha256).is_file()

    def hashes(self, kind: str) -> Iterator[str]:
        """The hashes of every stored file of this kind."""
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

    def stale_temporaries(self, older_than_s: float = 3600.0) -> Iterator[Path]:
        """Leftovers of interrupted writes (``.put-*`` files, entries in ``tmp/``) older than
        ``older_than_s``, so that uploads in progress are not counted."""
        cutoff = time.time() - older_than_s
        candidates: list[Path] = []
        for kind in KINDS:
            base = self.root / kind
            if base.is_dir():
                candidates += base.glob("*/.put-*")
        tmp = self.root / "tmp"
        if tmp.is_dir():
            candidates += tmp.iterdir()
        for path in candidates:
            try:
                if path.stat().st_mtime < cutoff:
                    yield path
            except FileNotFoundError:
                continue


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


def init_app(app) -> None:
    """Give the app its media store (``MEDIA_DIR``)."""
    app.extensions["voicemap.media"] = MediaStore(app.config["MEDIA_DIR"])


def media_store() -> MediaStore:
    """The current app's media store."""
    from flask import current_app

    return current_app.extensions["voicemap.media"]
