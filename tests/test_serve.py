"""The service as scripts/run serves it: scripts/serve, nginx in front of gunicorn.

Real processes on loopback, raw sockets. The server runs with a 3 s client timeout and a
5 s gunicorn worker timeout so that stalled and slow clients show their effect quickly.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from helpers import speech

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
VENUE = "national-museum-of-china"
CLIENT_TIMEOUT = 3  # VOICEMAP_CLIENT_TIMEOUT, seconds
WORKER_TIMEOUT = 5  # VOICEMAP_WORKER_TIMEOUT: gunicorn kills a worker stuck this long
WORKERS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """scripts/serve started the way scripts/run starts it, in its own process group."""

    def __init__(self, env: dict[str, str], tmp: Path, name: str) -> None:
        self.port = free_port()
        self.run_dir = tmp / f"run-{name}"
        self.env = {**env, "VOICEMAP_BIND": f"127.0.0.1:{self.port}",
                    "VOICEMAP_RUN_DIR": str(self.run_dir)}
        self.stdout = tmp / f"{name}.out"
        self.stderr = tmp / f"{name}.err"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Served:
        self.spawn()
        return self.wait_ready()

    def spawn(self) -> None:
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = subprocess.Popen([str(ROOT / "scripts" / "serve")], cwd=ROOT,
                                         env=self.env, stdout=out, stderr=err,
                                         start_new_session=True)

    def wait_ready(self) -> Served:
        assert self.proc is not None
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.get("/api/version", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"scripts/serve did not start:\n{self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        return (self.stdout.read_text(errors="replace")[-3000:] + "\n"
                + self.stderr.read_text(errors="replace")[-3000:])

    def get(self, path: str, headers: dict[str, str] | None = None,
            timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        try:  # anything the script left behind in its process group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.proc.returncode


def cli(env: dict[str, str], *args: str) -> str:
    """``voicemap ARGS`` in this process (saves the start-up of a new one); its stdout."""
    from click.testing import CliRunner

    from voicemap.cli import main

    keys = [k for k in env if k.startswith("VOICEMAP_")]
    result = CliRunner().invoke(main, list(args), env={k: env[k] for k in keys},
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "VOICEMAP_DATABASE_URL": f"sqlite:///{tmp / 'x.sqlite'}",
           "VOICEMAP_MEDIA_DIR": str(tmp / "media"), "VOICEMAP_SECRET_KEY": "serve-test",
           "VOICEMAP_CLIENT_TIMEOUT": f"{CLIENT_TIMEOUT}s",
           "VOICEMAP_WORKER_TIMEOUT": str(WORKER_TIMEOUT), "WEB_CONCURRENCY": str(WORKERS)}
    cli(env, "init-db")
    cli(env, "import", str(ROOT / "data" / "venues.geojson"))
    server = Served(env, tmp, "main")
    server.spawn()  # boots while the clip is made
    try:
        token = cli(env, "create-manager", "Tester", "--venue", VENUE).strip().splitlines()[-1]
        audio = speech(tmp / "audio", "guide.mp3")
        out = cli(env, "add-clip", VENUE, str(audio), "--lang", "en", "--narrator", "Lily",
                  "--age", "9", "--transcript", "Welcome to the museum.",
                  "--consent-by", "Parent", "--publish")
        server.wait_ready()
        for _ in range(2 * WORKERS):  # each worker's first database connection, untimed
            server.get("/healthz", timeout=30)
            server.get("/api/nearest?lat=39.9&lon=116.4", timeout=30)
    except BaseException:
        server.stop()
        raise
    server.token, server.audio, server.tmp = token, audio, tmp
    server.clip_id = out.split()[1].rstrip(":")
    yield server
    server.stop()


# --- raw sockets ----------------------------------------------------------------------------


def connect(site: Served, data: bytes = b"") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", site.port), timeout=5)
    if data:
        s.sendall(data)
    return s


def read_all(s: socket.socket, timeout: float) -> tuple[bytes, float, bool]:
    """What the server sends until it closes, or until one whole response with a
    Content-Length is in: bytes, seconds taken, whether it closed."""
    t0 = time.monotonic()
    out = b""
    s.settimeout(0.2)
    while time.monotonic() - t0 < timeout:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return out, time.monotonic() - t0, True
        if not chunk:
            return out, time.monotonic() - t0, True
        out += chunk
        head, sep, body = out.partition(b"\r\n\r\n")
        length = [ln.split(b":", 1)[1] for ln in head.lower().split(b"\r\n")
                  if ln.startswith(b"content-length:")]
        if sep and length and len(body) >= int(length[0]):
            return out, time.monotonic() - t0, False
    return out, time.monotonic() - t0, False


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in
               (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
    return status, headers, body


def assert_json_error(raw: bytes, status: int, code: str | None = None) -> dict:
    got, headers, body = parse(raw)
    assert got == status, raw[:500]
    assert headers["content-type"].startswith("application/json"), raw[:500]
    doc = json.loads(body)
    assert isinstance(doc["error"], str), doc
    assert doc["error"], doc
    if code:
        assert doc["code"] == code, doc
    return doc


def assert_answers_quickly(site: Served, rounds: int = 3) -> None:
    """/healthz and /api/nearest each answer 200 within 1 s, ``rounds`` times."""
    for _ in range(rounds):
        for path in ("/healthz", "/api/nearest?lat=39.9&lon=116.4"):
            t0 = time.monotonic()
            status, _, body = site.get(path, timeout=1)
            took = time.monotonic() - t0
            assert status == 200, body
            assert took < 1, f"{path} took {took:.2f} s"


def multipart(fields: dict[str, str], file: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             .encode() for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="{file.name}"\r\nContent-Type: audio/mpeg\r\n\r\n'.encode()
                 + file.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


CLIP_FIELDS = {"lang": "en", "narrator_name": "Lily", "narrator_age": "9",
               "transcript": "Welcome to the museum.", "consent": "true",
               "consent_by": "Parent"}


def upload_head(site: Served, length: int, ctype: str = "application/octet-stream") -> bytes:
    return (f"POST /api/venues/{VENUE}/clips HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\n"
            f"Authorization: Bearer {site.token}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


# --- the tests --------------------------------------------------------------------------------


def test_idle_connections_do_not_stop_the_service(site):
    """Idle clients that send only headers, or a Content-Length and no body, used to hold
    both sync workers: the whole service stopped answering until they went away."""
    socks = []
    try:
        for i in range(60):  # headers begun, never finished
            socks.append(connect(site, f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-N: {i}\r\n"
                                 .encode()))
        for _ in range(40):  # a promised body that never comes
            socks.append(connect(site, upload_head(site, 1_000_000)))
        time.sleep(0.3)
        assert_answers_quickly(site)
        # ... and the server drops them itself once they have been idle for the timeout.
        t0 = time.monotonic()
        closed = 0
        for s in socks[::10]:
            raw, _, was_closed = read_all(s, CLIENT_TIMEOUT + 4 - (time.monotonic() - t0))
            closed += was_closed
            assert b"gunicorn" not in raw.lower(), raw
            assert b"<html" not in raw.lower(), raw
            if raw:
                assert_json_error(raw, 408, "timeout")
        assert closed == len(socks[::10])
        assert time.monotonic() - t0 < CLIENT_TIMEOUT + 4
    finally:
        for s in socks:
            s.close()
    assert_answers_quickly(site, rounds=1)


def test_slow_upload_outlasting_the_worker_timeout_succeeds(site):
    """An upload trickling in for longer than gunicorn's worker timeout: nginx takes the
    body, gunicorn only sees it once it is whole."""
    body, ctype = multipart(CLIP_FIELDS, site.audio)
    seconds = WORKER_TIMEOUT + 3
    pieces = 16
    step = -(-len(body) // pieces)
    s = connect(site, upload_head(site, len(body), ctype))
    try:
        t0 = time.monotonic()
        for i in range(pieces):
            s.sendall(body[i * step:(i + 1) * step])
            if i == pieces // 2:
                assert_answers_quickly(site, rounds=1)  # meanwhile
            time.sleep(seconds / pieces)
        assert time.monotonic() - t0 > WORKER_TIMEOUT + 1
        raw, _, _ = read_all(s, 30)
    finally:
        s.close()
    status, headers, payload = parse(raw)
    assert status == 201, raw[:1000]
    assert headers["content-type"].startswith("application/json")
    clip = json.loads(payload)
    assert clip["status"] == "pending", clip
    assert clip["narrator_name"] == "Lily", clip


def test_client_that_stops_sending_is_dropped_without_holding_a_worker(site):
    stalled = []
    try:
        for _ in range(WORKERS + 2):
            s = connect(site, upload_head(site, 100_000) + b"x" * 5_000)
            stalled.append(s)
        t_last = time.monotonic()
        time.sleep(0.5)
        assert_answers_quickly(site)  # while they are stalled
        for s in stalled:
            raw, _, closed = read_all(s, CLIENT_TIMEOUT + 5 - (time.monotonic() - t_last))
            assert closed, "the server kept a stalled client"
            if raw:
                assert_json_error(raw, 408, "timeout")
        assert time.monotonic() - t_last < CLIENT_TIMEOUT + 5
    finally:
        for s in stalled:
            s.close()
    assert_answers_quickly(site, rounds=1)


def test_body_shorter_than_content_length(site):
    """The client sends part of the body and closes its side: a closed connection or a JSON
    error, never gunicorn's HTML, and no worker waits for the rest."""
    socks = []
    try:
        for _ in range(WORKERS + 2):
            s = connect(site, upload_head(site, 1000) + b"x" * 10)
            s.shutdown(socket.SHUT_WR)
            socks.append(s)
        assert_answers_quickly(site)
        for s in socks:
            raw, _, closed = read_all(s, CLIENT_TIMEOUT + 5)
            assert closed
            assert b"gunicorn" not in raw.lower(), raw
            assert b"<html" not in raw.lower(), raw
            if raw:
                assert parse(raw)[1]["content-type"].startswith("application/json"), raw
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (b"GET /api/nearest?lat=39.9&lon=116.4 HTTP/1.1 junk\r\nHost: x\r\n\r\n", 400,
     "bad_request"),
    (b"GET /api/venues/\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
    (b"NONSENSE\r\n\r\n", 400, "bad_request"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * 40_000 + b"\r\n\r\n", 431,
     "headers_too_large"),
    (b"GET /api/venues?q=" + b"a" * 40_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
     "uri_too_long"),
    (b"GET /audio/x.mp3 HTTP/2.0\r\nHost: x\r\n\r\n", 505, "bad_version"),
    (b"POST /api/venues/" + VENUE.encode() + b"/clips HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: 40000000\r\n\r\n", 413, "too_large"),
    (b"GET /api/no-such-thing HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 404,
     "not_found"),  # the app's own JSON, through nginx untouched
], ids=["bad-line", "control-char", "garbage", "huge-header", "long-uri", "http2",
        "too-large", "app-404"])
def test_front_server_errors_are_json_on_api_paths(site, request_bytes, status, code):
    s = connect(site, request_bytes)
    try:
        raw, _, _ = read_all(s, 3)
    finally:
        s.close()
    doc = assert_json_error(raw, status, code)
    if status == 413:
        assert "26214400" in doc["error"]


def test_front_server_errors_elsewhere_are_a_short_page(site):
    s = connect(site, b"GET /venues/x HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * 40_000
                + b"\r\n\r\n")
    try:
        raw, _, _ = read_all(s, 3)
    finally:
        s.close()
    status, headers, body = parse(raw)
    assert status == 431
    assert headers["content-type"].startswith("text/html")
    assert b"nginx" not in body
    assert len(body) < 500


def test_oversized_upload_is_refused_as_json(site):
    """A body that turns out larger than the limit while it is being sent (chunked)."""
    s = connect(site, (f"POST /api/venues/{VENUE}/clips HTTP/1.1\r\nHost: x\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n").encode())
    try:
        chunk = b"%x\r\n" % (1 << 20) + b"\0" * (1 << 20) + b"\r\n"
        try:
            for _ in range(28):
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw, _, _ = read_all(s, 5)
    finally:
        s.close()
    assert_json_error(raw, 413, "too_large")


def test_forwarding_headers_are_set_by_nginx_not_the_client(site):
    status, _, body = site.get(f"/venues/{VENUE}", headers={
        "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
        "X-Forwarded-Ssl": "on", "X-Forwarded-Host": "evil.example", "Forwarded": "for=1.2.3.4"})
    assert status == 200
    page = body.decode()
    assert f"http://127.0.0.1:{site.port}/venues/{VENUE}" in page
    assert "evil.example" not in page
    assert f"https://127.0.0.1:{site.port}" not in page
    time.sleep(0.2)  # gunicorn's access log line
    line = [ln for ln in site.stdout.read_text().splitlines() if f"/venues/{VENUE} " in ln][-1]
    assert line.startswith("127.0.0.1 ")
    assert "203.0.113.9" not in line
    assert "rid=" in line
    assert "rid=-" not in line


def test_audio_range_request_through_nginx(site):
    status, headers, body = site.get(f"/audio/{site.clip_id}.mp3",
                                     headers={"Range": "bytes=0-99"})
    assert status == 206, body[:200]
    assert headers["content-type"] == "audio/mpeg"
    assert headers["content-range"].startswith("bytes 0-99/")
    assert len(body) == 100
    full = site.get(f"/audio/{site.clip_id}.mp3", headers={"Accept-Encoding": "gzip"})
    assert full[0] == 200
    assert "content-encoding" not in full[1]
    assert full[2][:100] == body


def test_two_instances_keep_their_own_control_sockets(site):
    """gunicorn's default control socket is one per user: each instance has its own in its
    run directory, so stopping one leaves the other's alone. The second also shows a stale
    request body being cleared at start, and serve failing when gunicorn goes."""
    other = Served(site.env, site.tmp, "second")
    stale = other.run_dir / "tmp" / "body" / "0000000001"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a child's raw recording")
    other.start()
    try:
        assert not stale.exists()
        ours, theirs = site.run_dir / "gunicorn.ctl", other.run_dir / "gunicorn.ctl"
        deadline = time.monotonic() + 10
        while not (ours.is_socket() and theirs.is_socket()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ours.is_socket()
        assert theirs.is_socket()
        # gunicorn exits (here: told to): serve stops nginx too and fails.
        master = subprocess.run(["pgrep", "-P", str(other.proc.pid), "-f", "gunicorn"],
                                capture_output=True, text=True).stdout.split()
        assert len(master) == 1, master
        os.kill(int(master[0]), signal.SIGTERM)
        assert other.proc.wait(40) != 0
        with pytest.raises(OSError):
            other.get("/api/version", timeout=2)
    finally:
        other.stop()
    assert ours.is_socket()
    assert not theirs.exists()
    assert site.get("/healthz")[0] == 200


def test_second_instance_on_the_same_run_dir_is_refused(site):
    again = subprocess.run([str(ROOT / "scripts" / "serve")], cwd=ROOT, capture_output=True,
                           text=True, timeout=30,
                           env={**site.env, "VOICEMAP_BIND": f"127.0.0.1:{free_port()}"})
    assert again.returncode != 0
    assert "already serving" in again.stderr
    assert site.get("/healthz")[0] == 200
