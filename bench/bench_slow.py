#!/usr/bin/env python
"""Slow and idle clients: does the service still answer while they hang on?

    .venv/bin/python bench/bench_slow.py [--seconds 20] [--front both|nginx|direct]
        [--idle 100] [--uploads 10] [--rate 50]

Loads the real registry (data/venues.geojson) into a SpatiaLite file, serves it as
scripts/run does (scripts/serve: nginx in front of gunicorn, 2 sync workers, the default
30 s client timeout) and, with --front both (the default), afterwards the same way it was
served before: bare gunicorn, 2 sync workers, its default 30 s worker timeout. Against each:

  idle     opens ``--idle`` connections that send nothing more: half send only the start
           of their headers, half complete headers with ``Content-Length: 1000000`` and no
           body
  uploads  ``--uploads`` clip uploads (real WAV speech, multipart, a manager's token)
           trickling at ``--rate`` kB/s each, sized to outlast the measurement
  probes   meanwhile, for ``--seconds``: ``GET /healthz`` and
           ``GET /api/nearest?lat=39.9&lon=116.4`` in turn, a new connection each, every
           0.1 s, 2 s client timeout; p50/p99/max latency and how many took over 1 s or
           failed (target: all within 1 s)
  after    how each upload ended (status, seconds) and when the server dropped the idle
           connections (nginx: after the client timeout; bare gunicorn: whenever a worker
           gets to them)

Everything on loopback; under 2 minutes with --front both. Output also goes to
bench/output/slow-<date>.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from common import LINES, Server, say

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT_DIR = ROOT / "bench" / "output"
VENUE = "national-museum-of-china"
PROBES = ("/healthz", "/api/nearest?lat=39.9&lon=116.4")


def voicemap(env: dict[str, str], *args: str) -> str:
    return subprocess.run([str(BIN / "voicemap"), *args], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def recording(path: Path, size: int) -> Path:
    """A WAV of real (synthetic) speech, repeated to about ``size`` bytes (48 kHz stereo,
    so that the server's processing after the upload stays short)."""
    voice = path.with_suffix(".voice.wav")
    subprocess.run(["espeak-ng", "-v", "en", "-w", str(voice),
                    "Welcome to the museum. Here you can see dinosaurs and old bronze bells."],
                   check=True, capture_output=True)
    seconds = max(2.0, size / 192_000)  # 48 kHz stereo 16-bit
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                    "-stream_loop", "-1", "-i", str(voice), "-t", f"{seconds:.2f}",
                    "-ar", "48000", "-ac", "2", "-c:a", "pcm_s16le", str(path)], check=True)
    voice.unlink()
    return path


def multipart(token: str, port: int, audio: Path) -> bytes:
    boundary = uuid.uuid4().hex
    fields = {"lang": "en", "narrator_name": "Lily", "narrator_age": "9",
              "transcript": "Welcome to the museum.", "consent": "true",
              "consent_by": "Parent (benchmark)"}
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                    f"{v}\r\n".encode() for k, v in fields.items())
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
             f'filename="guide.wav"\r\nContent-Type: audio/wav\r\n\r\n').encode()
    body += audio.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST /api/venues/{VENUE}/clips HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nConnection: close\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


class Upload(threading.Thread):
    """One upload sent at ``rate`` bytes/s; its status (or what went wrong) and time."""

    def __init__(self, port: int, data: bytes, rate: int, give_up: float) -> None:
        super().__init__(daemon=True)
        self.port, self.data, self.rate, self.give_up = port, data, rate, give_up
        self.result = "not finished"
        self.seconds = float("nan")

    def run(self) -> None:
        t0 = time.monotonic()
        step = self.rate // 10
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
                for i in range(0, len(self.data), step):
                    if time.monotonic() - t0 > self.give_up:
                        self.result = "gave up sending"
                        return
                    s.sendall(self.data[i:i + step])
                    time.sleep(max(0.0, t0 + (i + step) / self.rate - time.monotonic()))
                s.settimeout(max(1.0, self.give_up - (time.monotonic() - t0)))
                reply = s.recv(200)
                self.result = reply.split(b"\r\n")[0].decode(errors="replace") or "closed"
        except OSError as exc:
            self.result = type(exc).__name__
        finally:
            self.seconds = time.monotonic() - t0


def probe(port: int, path: str) -> float | None:
    """Seconds for one GET on a new connection, or None when it failed or took over 2 s."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return time.monotonic() - t0 if resp.status == 200 else None
    except OSError:
        return None
    finally:
        conn.close()


def watch_idle(socks: list[socket.socket], opened: float, limit: float) -> list[float]:
    """Seconds after opening at which the server closed each idle connection (within
    ``limit``)."""
    closed: dict[int, float] = {}
    for s in socks:
        s.setblocking(False)
    while len(closed) < len(socks) and time.monotonic() - opened < limit:
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                if s.recv(4096) == b"":
                    closed[i] = time.monotonic() - opened
            except BlockingIOError:
                pass
            except OSError:
                closed[i] = time.monotonic() - opened
        time.sleep(0.1)
    return sorted(closed.values())


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))]


def scenario(server: Server, token: str, audio: Path, args, drop_limit: float) -> None:
    tag = f"[{server.kind}]"
    for path in PROBES:  # warm both workers
        probe(server.port, path)
        probe(server.port, path)
    socks: list[socket.socket] = []
    uploads: list[Upload] = []
    data = b""
    try:
        opened = time.monotonic()
        for i in range(args.idle):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            if i % 2 == 0:
                s.sendall(f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Idle: {i}\r\n".encode())
            else:
                s.sendall(b"POST /api/venues/" + VENUE.encode() + b"/clips HTTP/1.1\r\n"
                          b"Host: x\r\nContent-Type: audio/wav\r\n"
                          b"Content-Length: 1000000\r\n\r\n")
            socks.append(s)
        data = multipart(token, server.port, audio)
        for _ in range(args.uploads):
            up = Upload(server.port, data, args.rate * 1000, give_up=args.seconds + 45)
            up.start()
            uploads.append(up)
        times: dict[str, list[float | None]] = {p: [] for p in PROBES}
        t_end = time.monotonic() + args.seconds
        while time.monotonic() < t_end:
            for path in PROBES:
                times[path].append(probe(server.port, path))
                time.sleep(0.1)
        for path in PROBES:
            got = times[path]
            ok = sorted(t for t in got if t is not None)
            failed = len(got) - len(ok)
            slow = sum(t > 1 for t in ok)
            figures = (f"p50 {pct(ok, 0.5) * 1000:.0f} ms, p99 {pct(ok, 0.99) * 1000:.0f} ms, "
                       f"max {ok[-1] * 1000:.0f} ms" if ok else "no answer at all")
            good = not failed and not slow
            say(f"{tag} {path} with {args.idle} idle connections and {args.uploads} uploads "
                f"at {args.rate} kB/s: {figures}; {len(got)} probes, {slow} over 1 s, "
                f"{failed} failed or over 2 s (target all within 1 s: "
                f"{'met' if good else 'NOT met'})")
        drops = watch_idle(socks, opened, drop_limit)
        if drops:
            say(f"{tag} idle connections closed by the server: {len(drops)}/{len(socks)}, "
                f"after median {statistics.median(drops):.1f} s, max {drops[-1]:.1f} s "
                f"(watched {drop_limit:.0f} s)")
        else:
            say(f"{tag} idle connections closed by the server: 0/{len(socks)} within "
                f"{drop_limit:.0f} s")
    finally:
        for s in socks:
            s.close()
    t_wait = time.monotonic()
    for up in uploads:
        up.join(max(0.1, args.seconds + 60 - (time.monotonic() - t_wait)))
    results: dict[str, int] = {}
    for up in uploads:
        results[up.result] = results.get(up.result, 0) + 1
    longest = max((u.seconds for u in uploads if u.seconds == u.seconds), default=0.0)
    say(f"{tag} uploads of {len(data) / 1e6:.2f} MB at {args.rate} kB/s: "
        + ", ".join(f"{n} x {r!r}" for r, n in sorted(results.items()))
        + f"; the last ended after {longest:.0f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=15, help="probing time per server")
    ap.add_argument("--front", choices=("nginx", "direct", "both"), default="both")
    ap.add_argument("--idle", type=int, default=100)
    ap.add_argument("--uploads", type=int, default=10)
    ap.add_argument("--rate", type=int, default=50, help="kB/s per upload")
    args = ap.parse_args()
    started = dt.datetime.now()
    say(f"# bench_slow {started.isoformat(timespec='seconds')} on {os.cpu_count()} cores; "
        f"{args.idle} idle connections, {args.uploads} uploads at {args.rate} kB/s, "
        f"probes for {args.seconds} s; nginx client timeout "
        f"{os.environ.get('VOICEMAP_CLIENT_TIMEOUT', '30s')}, gunicorn 2 sync workers")
    with tempfile.TemporaryDirectory(prefix="voicemap-bench-slow-") as tmpdir:
        tmp = Path(tmpdir)
        env = {**os.environ, "VOICEMAP_DATABASE_URL": f"sqlite:///{tmp / 'voicemap.sqlite'}",
               "VOICEMAP_MEDIA_DIR": str(tmp / "media"), "VOICEMAP_SECRET_KEY": "bench"}
        voicemap(env, "init-db")
        voicemap(env, "import", str(ROOT / "data" / "venues.geojson"))
        token = voicemap(env, "create-manager", "bench", "--venue", VENUE).split()[-1]
        # Each upload outlasts the probing: about (seconds + 5) s at the rate.
        audio = recording(tmp / "guide.wav", (args.seconds + 5) * args.rate * 1000)
        fronts = {"both": ["nginx", "direct"], "nginx": ["nginx"],
                  "direct": ["direct"]}[args.front]
        for front in fronts:
            direct = front == "direct"
            # Bare gunicorn as scripts/run ran it before: its default 30 s worker timeout.
            server = Server(env["VOICEMAP_DATABASE_URL"], tmp, direct=direct,
                            worker_timeout=30 if direct else 120)
            try:
                scenario(server, token, audio, args, drop_limit=35)
            finally:
                server.stop()
    say(f"# done in {(dt.datetime.now() - started).total_seconds():.0f} s")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / f"slow-{started:%Y-%m-%d}.txt").write_text("\n".join(LINES) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
