"""Where media bytes live: content-addressed files under the media directory.

``published/ab/<sha256>.mp3`` holds the processed files families stream; ``originals/ab/
<sha256>`` keeps each upload as received, privately, as the archive copy. The same bytes are
stored once. Writes are atomic: a temporary file in the same directory, fsync, rename, and
an fsync of the directory, so a crash never leaves a half-written file under a real name.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

KINDS = {"published": ".mp3", "originals": ""}
GRACE_S = 2.0  # a temporary this young may not be locked by its process yet (a race of µs)
SWEEP_EVERY_S = 600.0  # how often each process looks for abandoned temporaries

log = logging.getLogger(__name__)


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

    @contextmanager
    def scratch(self, prefix: str) -> Iterator[Path]:
        """A private working directory under ``tmp/``, removed when the block ends.

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

    def probe(self) -> None:
        """Write, read back and remove a small file: raises OSError when the store cannot take
        a write (full disk, read-only, gone)."""
        with self.scratch("probe-") as work:
            test = work / "probe"
            with open(test, "wb") as fh:
                fh.write(os.urandom(4096))
                fh.flush()
                os.fsync(fh.fileno())
            if test.stat().st_size != 4096:
                raise OSError(errno.EIO, "media store probe came back short", str(test))

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

    def abandoned_temporaries(self, grace_s: float = GRACE_S) -> Iterator[Path]:
        """Leftovers of interrupted work: ``.put-*`` files and entries of ``tmp/`` that no
        live process holds locked (see ``scratch``).

        Entries younger than ``grace_s`` are passed over: between creating one and locking
        it, its process holds no lock yet. Locks are per host, which is where ``tmp/`` is.
        """
        cutoff = time.time() - grace_s
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
    """Give the app its media store (``MEDIA_DIR``); remove what crashed processes left in
    it at start-up, and every ``SWEEP_EVERY_S`` after that."""
    store = MediaStore(app.config["MEDIA_DIR"])
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


def media_store() -> MediaStore:
    """The current app's media store."""
    from flask import current_app

    return current_app.extensions["voicemap.media"]
