"""Settings: safe defaults, then ``VOICEMAP_*`` environment variables, then an explicit mapping.

Every setting can be given as an environment variable with the ``VOICEMAP_`` prefix, e.g.
``VOICEMAP_DATABASE_URL``. Values are parsed as JSON where they look like JSON
(``VOICEMAP_MAX_UPLOAD_BYTES=1000000`` is an int), as Flask's ``from_prefixed_env`` does.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import BadRequest

# Beijing Municipality's extent (WGS-84, lon/lat), with a small margin: imports refuse
# venues outside it, which catches swapped coordinates and points in the wrong city.
BEIJING_SERVICE_AREA = (115.38, 39.40, 117.53, 41.08)

TILE_PROVIDERS: dict[str, dict[str, Any]] = {
    "osm": {
        "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "attribution": '&copy; <a href="https://www.openstreetmap.org/copyright">'
                       "OpenStreetMap</a> contributors",
        "datum": "wgs84",
        "max_zoom": 19,
        "subdomains": "",
    },
    # Gaode/AMap raster tiles are drawn in GCJ-02: markers are shifted to match them.
    "amap": {
        "url": "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1"
               "&style=8&x={x}&y={y}&z={z}",
        "attribution": "&copy; 高德地图 AutoNavi",
        "datum": "gcj02",
        "max_zoom": 18,
        "subdomains": "1234",
    },
}


def defaults(instance_path: str) -> dict[str, Any]:
    """The settings used when nothing else is given."""
    instance = Path(instance_path)
    return {
        # Empty means the embedded SpatiaLite file in the instance folder.
        "DATABASE_URL": "",
        "MEDIA_DIR": str(instance / "media"),
        # s3://bucket/prefix keeps media in an S3-compatible store instead of MEDIA_DIR
        # (credentials from the standard AWS variables; S3_ENDPOINT_URL for non-AWS stores).
        "MEDIA_URL": "",
        "S3_ENDPOINT_URL": "",
        # Work in progress (uploads being received and processed) on this host's disk, when
        # media are in an object store; with MEDIA_DIR it is MEDIA_DIR/tmp.
        "MEDIA_SCRATCH_DIR": str(instance / "scratch"),
        "MAX_UPLOAD_BYTES": 25 * 1024 * 1024,
        "MAX_DURATION_S": 600,
        "MIN_DURATION_S": 1.0,
        "SERVICE_AREA": BEIJING_SERVICE_AREA,
        "TILES": "osm",
        "TILE_URL": "",  # a custom tile URL template overrides TILES' url
        "TILE_ATTRIBUTION": "",
        "TILE_DATUM": "",
        "PUBLIC_URL": "",  # e.g. https://voicemap.example.org, for QR codes and link previews
        "SECRET_KEY": "",
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": 12 * 3600,  # /manage sign-ins last a working day
        "SESSION_COOKIE_SECURE": False,  # set VOICEMAP_SESSION_COOKIE_SECURE=true behind HTTPS
        # Host names requests may carry (comma-separated; ".example.org" takes subdomains,
        # "*" any). Default: loopback names and PUBLIC_URL's host. Others get 400, so a
        # forged Host cannot reach links, QR codes or caches.
        "TRUSTED_HOSTS": "",
        # Peers whose X-Forwarded-For/-Proto/-Host/-Port are believed (the front server);
        # requests through a unix socket count as local.
        "TRUSTED_PROXIES": "127.0.0.1,::1",
        "SQLITE_BUSY_TIMEOUT_MS": 15000,
        # Rate limits, in Flask-Limiter's syntax ("10/minute", "60 per hour"); counters live
        # in Redis when REDIS_URL is set (shared by every host), in memory otherwise.
        "REDIS_URL": "",
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_AUTH": "10/minute",  # failed token checks and sign-ins, per address
        "RATELIMIT_UPLOAD": "60/hour",  # uploads, per manager
        "RATELIMIT_SUBMIT": "10/hour",  # public submissions, per address
        "RATELIMIT_PLAY": "20/hour",  # play beacons, per address and clip
        "RATELIMIT_KEY_PREFIX": "voicemap",
        # /metrics answers loopback and trusted proxies, and this bearer token if set.
        "METRICS_TOKEN": "",
        # OGC API - Features: the largest ``limit`` an items page honours (larger asks get
        # this many).
        "OGC_MAX_LIMIT": 10000,
        # ... and how long a query's numberMatched is reused by a worker (0: count each time).
        "OGC_COUNT_TTL_S": 10,
        # Load the map's stack (Folium) and GDAL (pyogrio) while the app is built, so no
        # request waits for them. The CLI turns it off: a light command stays light, and
        # loads GDAL before the database only when it reads or writes a GDAL format.
        "PRELOAD": True,
        # Serve the map page's scripts as one bundle (built by scripts/setup); false serves
        # its ES modules as they are, for working on them without rebuilding.
        "MAP_BUNDLE": True,
    }


def instance_path(package: str = "voicemap") -> str:
    """The instance folder Flask gives the app (``Flask.auto_find_instance_path``), found
    without importing Flask: ``instance`` beside the package in a checkout or an editable
    install, ``PREFIX/var/voicemap-instance`` when installed under ``sys.prefix`` or a
    virtualenv's ``site-packages``. A test holds it equal to the app's."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None
    package_path = os.path.dirname(os.path.dirname(spec.origin))  # contains the package
    prefix = os.path.abspath(sys.prefix)
    if Path(package_path).is_relative_to(prefix):
        return os.path.join(prefix, "var", f"{package}-instance")
    site_parent, site_folder = os.path.split(package_path)
    if site_folder.lower() == "site-packages":
        parent, folder = os.path.split(site_parent)
        if folder.lower() == "lib":  # Windows: PREFIX/lib/site-packages
            root = parent
        elif os.path.basename(parent).lower() == "lib":  # PREFIX/lib/pythonX.Y/site-packages
            root = os.path.dirname(parent)
        else:
            root = site_parent
        return os.path.join(root, "var", f"{package}-instance")
    return os.path.join(package_path, "instance")


def load(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings ``create_app(config)`` gives the app, without building it (for commands
    that need no app, such as the export): the defaults, then ``VOICEMAP_*`` variables read
    as Flask's ``from_prefixed_env`` reads them (JSON where it parses, ``A__B`` nested), then
    ``config``, finished. A test holds the two equal."""
    instance = instance_path()
    out = defaults(instance)
    for key in sorted(os.environ):
        if not key.startswith("VOICEMAP_"):
            continue
        value: Any = os.environ[key]
        try:
            value = json.loads(value)
        except Exception:
            pass  # a plain string
        *parts, tail = key.removeprefix("VOICEMAP_").split("__")
        current = out
        for part in parts:
            current = current.setdefault(part, {})
        current[tail] = value
    out.update(config or {})
    finish(out, instance)
    return out


def finish(config: dict[str, Any], instance_path: str) -> None:
    """Fill in derived settings and normalise the types of the ones given as strings."""
    if not config.get("DATABASE_URL"):
        config["DATABASE_URL"] = "sqlite:///" + str(Path(instance_path) / "voicemap.sqlite")
    area = config["SERVICE_AREA"]
    if isinstance(area, str):
        area = parse_bbox(area, param="VOICEMAP_SERVICE_AREA")
    config["SERVICE_AREA"] = tuple(float(v) for v in area)
    for key in ("MAX_UPLOAD_BYTES", "MAX_DURATION_S"):
        config[key] = int(config[key])
    config["MIN_DURATION_S"] = float(config["MIN_DURATION_S"])
    if config["TILES"] not in TILE_PROVIDERS and not config["TILE_URL"]:
        raise ValueError(f"VOICEMAP_TILES must be one of {sorted(TILE_PROVIDERS)} "
                         f"or VOICEMAP_TILE_URL must be set, got {config['TILES']!r}")
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = _instance_secret(Path(instance_path))
    config["MAX_CONTENT_LENGTH"] = config["MAX_UPLOAD_BYTES"] + 1024 * 1024
    config["SQLITE_BUSY_TIMEOUT_MS"] = int(config["SQLITE_BUSY_TIMEOUT_MS"])
    config["TRUSTED_PROXIES"] = _names(config["TRUSTED_PROXIES"])
    config["RATELIMIT_ENABLED"] = _flag(config["RATELIMIT_ENABLED"])
    config["PRELOAD"] = _flag(config["PRELOAD"])
    config["MAP_BUNDLE"] = _flag(config["MAP_BUNDLE"])
    config["METRICS_TOKEN"] = str(config.get("METRICS_TOKEN") or "")
    config["OGC_MAX_LIMIT"] = int(config["OGC_MAX_LIMIT"])
    config["OGC_COUNT_TTL_S"] = float(config["OGC_COUNT_TTL_S"])
    if config["OGC_MAX_LIMIT"] < 1:
        raise ValueError("VOICEMAP_OGC_MAX_LIMIT must be at least 1")
    hosts = _names(config["TRUSTED_HOSTS"])
    if not hosts:
        hosts = ["localhost", "127.0.0.1", "::1", "[::1]"]
        public = urlsplit(config.get("PUBLIC_URL") or "").hostname
        if public:
            hosts.append(public)
    # Flask checks Request.host against TRUSTED_HOSTS while routing (None: any host).
    config["TRUSTED_HOSTS"] = None if "*" in hosts else hosts


def _names(value: Any) -> list[str]:
    """A comma-separated setting (or a list) as a list of stripped, non-empty names."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return [str(v).strip() for v in items if str(v).strip()]


def _flag(value: Any) -> bool:
    """A boolean setting: "false", "no", "off", "0" and "" are false."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def tiles(config: dict[str, Any]) -> dict[str, Any]:
    """The tile layer to draw: url, attribution, datum, max zoom, subdomains."""
    base = dict(TILE_PROVIDERS.get(config["TILES"], TILE_PROVIDERS["osm"]))
    if config.get("TILE_URL"):
        base.update(url=config["TILE_URL"], subdomains="abc" if "{s}" in config["TILE_URL"]
                    else "", attribution=config.get("TILE_ATTRIBUTION") or "")
    if config.get("TILE_DATUM"):
        base["datum"] = config["TILE_DATUM"]
    return base


def parse_bbox(text: str, param: str = "bbox") -> tuple[float, float, float, float]:
    """Parse 'minlon,minlat,maxlon,maxlat' (WGS-84) into a checked tuple."""
    parts = text.split(",")
    if len(parts) != 4:
        raise BadRequest(f"{param} must be minlon,minlat,maxlon,maxlat", param=param)
    try:
        minlon, minlat, maxlon, maxlat = (float(p) for p in parts)
    except ValueError:
        raise BadRequest(f"{param} must be four numbers: minlon,minlat,maxlon,maxlat",
                         param=param) from None
    if not (-180 <= minlon <= maxlon <= 180 and -90 <= minlat <= maxlat <= 90):
        raise BadRequest(f"{param} is out of range or has min greater than max", param=param)
    return minlon, minlat, maxlon, maxlat


def _instance_secret(instance: Path) -> str:
    # Several worker processes must share one key, so it lives in a file, made once.
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # atomic: the first worker's key wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()
