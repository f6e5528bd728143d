"""Rate limits: failed token checks per client address, uploads per manager, public
submissions per address, play beacons per address and clip.

Flask-Limiter keeps the counters: in Redis when ``VOICEMAP_REDIS_URL`` is set (one count for
every worker and host), in memory otherwise (one count per worker process). The limits are
settings in Flask-Limiter's syntax (``VOICEMAP_RATELIMIT_AUTH``, ``_UPLOAD``, ``_SUBMIT``,
``_PLAY``);
``VOICEMAP_RATELIMIT_ENABLED=false`` turns them all off. Over a limit is
:class:`~voicemap.errors.TooManyRequests`: 429 with ``Retry-After``.

The client address is ``request.remote_addr``: the front server's ``X-Forwarded-For`` only
when it is a trusted proxy (see ``http.TrustedProxies``), so a client cannot pick its own.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from functools import wraps

from flask import Flask, current_app, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse

from . import auth
from .errors import TooManyRequests

log = logging.getLogger(__name__)

KINDS = ("auth", "upload", "submit", "play")

MESSAGES = {
    "auth": "too many failed sign-ins or wrong tokens from this address",
    "upload": "too many uploads from this manager",
    "submit": "too many submissions from this address",
    "play": "too many plays of this clip counted from this address",
}


@dataclass
class RateLimits:
    """An app's limiter and its parsed limits."""

    limiter: Limiter
    items: dict[str, RateLimitItem]
    prefix: str


def _address() -> str:
    # An empty peer is a unix socket: one local key for them all.
    return request.remote_addr or "local"


def init_app(app: Flask) -> None:
    """Set up the app's limiter (Redis or memory) and check the limits' syntax."""
    cfg = app.config
    redis_url = cfg.get("REDIS_URL") or ""
    # Short timeouts: a Redis that does not answer must not hold requests (see _run).
    options = {"socket_connect_timeout": 2, "socket_timeout": 2} if redis_url else {}
    limiter = Limiter(_address, storage_uri=redis_url or "memory://", storage_options=options,
                      key_prefix=cfg["RATELIMIT_KEY_PREFIX"], enabled=cfg["RATELIMIT_ENABLED"])
    limiter.init_app(app)
    items = {}
    for kind in KINDS:
        setting = cfg[f"RATELIMIT_{kind.upper()}"]
        try:
            items[kind] = parse(str(setting))
        except ValueError:
            raise ValueError(f"VOICEMAP_RATELIMIT_{kind.upper()} must be a rate limit such as "
                             f"'10/minute', got {setting!r}") from None
    app.extensions["voicemap.limits"] = RateLimits(limiter, items, cfg["RATELIMIT_KEY_PREFIX"])


def _run(kind: str, key: str, *, hit: bool) -> bool:
    """Test (or count) one request against a limit; whether it is within the limit.

    A storage that fails (Redis down) lets requests through, with a warning: the limits
    slow guessing and floods, they are not what keeps data safe.
    """
    state: RateLimits | None = current_app.extensions.get("voicemap.limits")
    if state is None or not state.limiter.enabled:
        return True
    strategy = state.limiter.limiter
    try:
        if hit:
            return strategy.hit(state.items[kind], state.prefix, kind, key)
        return strategy.test(state.items[kind], state.prefix, kind, key)
    except state.limiter.storage.base_exceptions as exc:
        log.warning("rate limit storage failed, not limiting: %s", exc)
        return True


def _refuse(kind: str, key: str) -> TooManyRequests:
    state: RateLimits = current_app.extensions["voicemap.limits"]
    item = state.items[kind]
    try:
        reset = state.limiter.limiter.get_window_stats(item, state.prefix, kind, key).reset_time
        retry_after = max(1, math.ceil(reset - time.time()))
    except state.limiter.storage.base_exceptions:
        retry_after = item.get_expiry()
    return TooManyRequests(f"{MESSAGES[kind]} (limit {item}); try again in {retry_after} "
                           "seconds", retry_after=retry_after)


def authenticate_limited(session, token: str | None):
    """``auth.authenticate`` with failures counted per client address.

    Once an address is over ``RATELIMIT_AUTH`` it is refused (429) even with a right token
    until the window passes: otherwise guessing would simply go on.

    :raises TooManyRequests: the address is over its limit of failed attempts.
    """
    address = _address()
    if not _run("auth", address, hit=False):
        raise _refuse("auth", address)
    manager = auth.authenticate(session, token)
    if manager is None:
        _run("auth", address, hit=True)
    return manager


def count_upload(manager) -> None:
    """Count an upload by this manager (keyed by id, wherever they upload from).

    :raises TooManyRequests: over ``RATELIMIT_UPLOAD``.
    """
    if not _run("upload", str(manager.id), hit=True):
        raise _refuse("upload", str(manager.id))


def count_play(clip_id: str) -> None:
    """Count a play beacon for ``clip_id`` from this address, so that one client cannot
    inflate a clip's play count. The key lives only as long as the limit's window, in the
    limiter's storage; it is never written to the database.

    :raises TooManyRequests: over ``RATELIMIT_PLAY`` for this address and clip.
    """
    key = f"{_address()}|{clip_id}"
    if not _run("play", key, hit=True):
        raise _refuse("play", key)


def submit_limit(view):
    """Decorate a public submission view: ``RATELIMIT_SUBMIT`` per client address, every
    request counted (429 JSON under /api/ once over it)::

        @bp.post("/api/submissions")
        @submit_limit
        def submit(): ...
    """

    @wraps(view)
    def limited(*args, **kwargs):
        address = _address()
        if not _run("submit", address, hit=True):
            raise _refuse("submit", address)
        return view(*args, **kwargs)

    return limited
