"""The family-facing pages: the map and one page per venue."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("pages", __name__)
