"""A non-editable install serves the map, venue pages, /manage and static files.

The checkout is packed as an sdist, the sdist built into a wheel, and the wheel installed
with its dependencies into a fresh virtualenv (no system site-packages, so nothing the
checkout has can stand in for a file the package lacks). The installed ``voicemap`` and
gunicorn then run from a directory outside the checkout.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import feature, write

from voicemap import assets, resources

ROOT = Path(__file__).resolve().parent.parent


def _run(*args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-4000:])
    return result


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv holding voicemap as built from its sdist; its bin directory."""
    base = tmp_path_factory.mktemp("install")
    dist = base / "dist"
    dist.mkdir()
    _run(sys.executable, "-c", "import sys\nfrom setuptools import build_meta\n"
         "build_meta.build_sdist(sys.argv[1])", dist, cwd=ROOT)
    sdists = list(dist.glob("voicemap-*.tar.gz"))
    assert len(sdists) == 1
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, sdists[0],
         cwd=base)
    wheels = list(dist.glob("voicemap-*.whl"))
    assert len(wheels) == 1
    venv = base / "venv"
    _run(sys.executable, "-m", "venv", venv)
    _run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheels[0], cwd=base)
    return venv / "bin"


def test_every_served_npm_file_is_shipped():
    served = {rel for rel in assets.ASSET_FILES.values() if rel.startswith("node_modules/")}
    assert served <= set(resources.NPM_FILES)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def test_installed_package_serves_pages_and_files(installed, database_url, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VOICEMAP_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(VOICEMAP_DATABASE_URL=database_url, VOICEMAP_MEDIA_DIR=str(tmp_path / "media"),
               VOICEMAP_SECRET_KEY="install-test", PATH=f"{installed}:{env['PATH']}")
    where = _run(installed / "python", "-c",
                 "import voicemap, voicemap.resources as r; print(voicemap.__file__); "
                 "print(r.WEB_DIR)", cwd=outside, env=env).stdout.split()
    assert Path(where[0]).is_relative_to(installed.parent)
    assert Path(where[1]).is_relative_to(installed.parent)
    venues = write(outside / "venues.geojson", [feature("inst-1", 116.39, 39.91)])
    _run(installed / "voicemap", "init-db", cwd=outside, env=env)
    _run(installed / "voicemap", "import", venues, cwd=outside, env=env)

    port = _free_port()
    server = subprocess.Popen(
        [installed / "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "voicemap:create_app()"],
        cwd=outside, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-4000:]
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        status, home = _get(base + "/")
        assert status == 200, home[-2000:]
        script = re.search(r'src="(/assets/[0-9a-f]+/vm/map-page\.js)"', home)
        assert script is not None
        status, body = _get(base + script.group(1))  # the map's bundle travels in the wheel
        assert status == 200
        assert body == (ROOT / "web" / resources.MAP_BUNDLE[0]).read_text(encoding="utf-8")
        status, leaflet = _get(base + script.group(1).replace("vm/map-page.js",
                                                              "leaflet/leaflet.js"))
        assert status == 200
        assert "Leaflet" in leaflet
        status, page = _get(base + "/venues/inst-1")
        assert status == 200
        assert "Venue inst-1" in page
        status, manage = _get(base + "/manage/")
        assert status == 200
        assert 'name="token"' in manage
        # the gettext catalogues travel as package data (no .mo needed): English plurals
        status, home_en = _get(base + "/?lang=en")
        assert status == 200
        assert '"voice_count": {"one": "%(n)s voice guide", "other": "%(n)s voice guides"}' \
            in home_en
        assert '"near_me": "' in home_en
        status, css = _get(base + "/static/manage.css")
        assert status == 200
        assert css == (ROOT / "web" / "static" / "manage.css").read_text(encoding="utf-8")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        server.stderr.close()
