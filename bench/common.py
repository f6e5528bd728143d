"""What the benchmarks share: a free loopback port and the real app under gunicorn."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv running the benchmark


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with 2 sync workers serving the real app against ``url``, on loopback."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "VOICEMAP_DATABASE_URL": url, "VOICEMAP_SECRET_KEY": "bench",
               "VOICEMAP_MEDIA_DIR": str(tmp / "media")}
        self.log = open(tmp / f"gunicorn-{self.port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "--workers", "2", "--worker-class", "sync",
             "--bind", f"127.0.0.1:{self.port}", "--timeout", "600",
             "--log-level", "warning", "voicemap:create_app()"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.base + "/api/version", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start: see {self.log.name}")
            time.sleep(0.2)

    def workers(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                             text=True).stdout
        return [int(p) for p in out.split()]

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.base + path, timeout=60) as r:
            return r.read()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def bulk_load_spatialite(engine, columns: list[str] | tuple[str, ...], rows) -> None:
    """Insert ``rows`` (the columns' values, then lon, lat) into a SpatiaLite ``venues``
    table in one transaction, then build the R*Tree index and statistics."""
    from voicemap.backends import spatialite

    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("BEGIN")
        cur.executemany(
            f"INSERT INTO venues ({', '.join(columns)}, geom) "
            f"VALUES ({', '.join('?' * len(columns))}, MakePoint(?, ?, 4326))", rows)
        cur.execute("COMMIT")
    finally:
        raw.close()
    with engine.begin() as conn:
        spatialite.create_spatial_index(conn)
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
