"""What the benchmarks share: printing figures, peak memory, a free loopback port and the real
app, served as scripts/run serves it (nginx in front of gunicorn) or, for comparison, by bare
gunicorn."""

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


LINES: list[str] = []  # every figure printed by ``say``, for a benchmark's summary


def say(line: str) -> None:
    """Print a figure as it is measured (and keep it for the summary)."""
    print(line, flush=True)
    LINES.append(line)


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def hwm_mb() -> float:
    """This process's peak resident memory so far (VmHWM), in MB."""
    import re

    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The real app against ``url`` on loopback, served as ``scripts/run`` serves it:
    ``scripts/serve``, nginx in front of gunicorn with 2 sync workers on a unix socket.

    ``direct=True`` serves it with bare gunicorn on TCP instead (2 sync workers, how
    ``scripts/run`` served it before nginx was put in front), for comparison. The worker
    timeout is 600 s by default, for the 1,000,000-venue export.
    """

    def __init__(self, url: str, tmp: Path, direct: bool = False,
                 env: dict[str, str] | None = None, worker_timeout: int = 600) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.direct = direct
        self.kind = "gunicorn" if direct else "nginx+gunicorn"
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               "VOICEMAP_DATABASE_URL": url, "VOICEMAP_SECRET_KEY": "bench",
               "VOICEMAP_MEDIA_DIR": str(tmp / "media"), **(env or {})}
        name = "gunicorn" if direct else "serve"
        self.log = open(tmp / f"{name}-{self.port}.log", "w")  # noqa: SIM115
        if direct:
            cmd = [str(BIN / "gunicorn"), "--workers", "2", "--worker-class", "sync",
                   "--bind", f"127.0.0.1:{self.port}", "--timeout", str(worker_timeout),
                   "--no-control-socket", "--log-level", "warning", "voicemap:create_app()"]
        else:
            cmd = [str(ROOT / "scripts" / "serve")]
            env.update({"VOICEMAP_BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": "2",
                        "VOICEMAP_RUN_DIR": str(tmp / f"run-{self.port}")})
            env.setdefault("VOICEMAP_WORKER_TIMEOUT", str(worker_timeout))
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.base + "/api/version", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.kind} did not start: see {self.log.name}")
            time.sleep(0.2)

    def workers(self) -> list[int]:
        """The gunicorn workers' pids."""
        master = self.proc.pid
        if not self.direct:  # scripts/serve's child running gunicorn
            master = next(p for p in children(self.proc.pid)
                          if "gunicorn" in Path(f"/proc/{p}/cmdline").read_text())
        return children(master)

    def cpu_seconds(self) -> float:
        """CPU time used so far by all of the server's processes (scripts/serve, nginx,
        gunicorn and its workers): a cost per request that other load on the machine does
        not skew the way it skews requests/s."""
        total = 0
        for pid in descendants(self.proc.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.base + path, timeout=60) as r:
            return r.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever is left in its process group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


def descendants(pid: int) -> list[int]:
    found = [pid]
    for child in children(pid):
        found += descendants(child)
    return found


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


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
