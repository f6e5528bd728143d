"""Prometheus metrics at ``/metrics``: requests by endpoint and status, their latency,
upload processing time and media store errors.

With several gunicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` to a directory of the
instance's own, emptied before gunicorn starts: every worker then writes its samples there
and ``/metrics`` adds them up (prometheus-client's multiprocess mode). Without it each
process counts on its own. ``/metrics`` reveals traffic, so it answers only loopback and the
trusted proxies' own requests, or a request carrying ``VOICEMAP_METRICS_TOKEN`` as a bearer
token; anyone else gets the plain 404 of an unknown path.
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import Flask, Response, abort, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from .auth import bearer_token

# Uploads are decoded, trimmed, normalised and encoded: seconds, up to minutes for long ones.
UPLOAD_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)


@dataclass
class Metrics:
    """One app's metrics, in a registry of its own (two apps in a process do not clash)."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    upload_seconds: Histogram
    storage_errors: Counter


def init_app(app: Flask) -> None:
    """Create the app's metrics, time every request, and serve ``/metrics``."""
    registry = CollectorRegistry(auto_describe=True)
    metrics = Metrics(
        registry=registry,
        # Flask's endpoint name, not the path: ids in paths would make a series per venue.
        requests=Counter("voicemap_http_requests", "HTTP requests answered",
                         ["endpoint", "status"], registry=registry),
        latency=Histogram("voicemap_http_request_duration_seconds",
                          "Time from the request's arrival in the app to its response",
                          ["endpoint"], registry=registry),
        upload_seconds=Histogram("voicemap_upload_processing_seconds",
                                 "Time to check, process and store an uploaded clip",
                                 buckets=UPLOAD_BUCKETS, registry=registry),
        storage_errors=Counter("voicemap_media_store_errors",
                               "Media store failures answered with an error (507 for a full "
                               "disk), by kind (errno name)", ["kind"], registry=registry),
    )
    app.extensions["voicemap.metrics"] = metrics

    @app.before_request
    def start_clock():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def count(response: Response) -> Response:
        endpoint = request.endpoint or "unmatched"
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        started = g.get("metrics_started")
        if started is not None:
            metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
        return response

    app.add_url_rule("/metrics", "metrics", serve)


def _metrics() -> Metrics | None:
    return current_app.extensions.get("voicemap.metrics")


def serve() -> Response:
    """The metrics in Prometheus' text format, to those allowed to see them (else 404)."""
    if not _allowed():
        abort(404)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = _metrics().registry
    response = Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response


def _allowed() -> bool:
    """Loopback, a trusted proxy itself (or a unix socket), or the metrics token."""
    address = request.remote_addr or ""
    if address == "" or address.startswith("unix:"):
        return True
    if address in current_app.config["TRUSTED_PROXIES"]:
        return True
    try:
        if ipaddress.ip_address(address).is_loopback:
            return True
    except ValueError:
        pass
    token = current_app.config.get("METRICS_TOKEN") or ""
    sent = bearer_token(request.headers.get("Authorization")) or ""
    return bool(token) and hmac.compare_digest(sent.encode(), token.encode())


@contextmanager
def timed_upload() -> Iterator[None]:
    """Observe how long the block (an upload's processing and storing) takes."""
    started = time.perf_counter()
    try:
        yield
    finally:
        metrics = _metrics()
        if metrics is not None:
            metrics.upload_seconds.observe(time.perf_counter() - started)


def count_storage_error(exc: BaseException) -> None:
    """Count a media store failure that became an error response, by its errno's name."""
    metrics = _metrics()
    if metrics is None:
        return
    if isinstance(exc, OSError):
        kind = errno.errorcode.get(exc.errno or 0, "other")
    else:
        kind = getattr(exc, "code", None) or "other"
    metrics.storage_errors.labels(kind).inc()
