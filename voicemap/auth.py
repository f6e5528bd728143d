"""Manager tokens, roles, and scoping a manager to their venues.

A token is shown once when a manager is created; only its SHA-256 is stored, so a leaked
database does not leak working tokens. Tokens are long random strings, so a plain hash
(rather than a slow password hash) is the right tool.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import BadRequest, Forbidden, Unauthorized
from .models import Manager, Venue

TOKEN_PREFIX = "vm_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_manager(session: Session, name: str, venue_ids: list[str] | None = None,
                   admin: bool = False) -> tuple[Manager, str]:
    """A new manager (of these venues, or an administrator) and their one-time token."""
    name = name.strip()
    if not name or len(name) > 80:
        raise BadRequest("a manager needs a name of 1 to 80 characters", param="name")
    if not admin and not venue_ids:
        raise BadRequest("a manager needs at least one venue (or --admin)", param="venue")
    venues = []
    for vid in venue_ids or []:
        venue = session.get(Venue, vid)
        if venue is None:
            raise BadRequest(f"no venue with id {vid!r}", param="venue")
        venues.append(venue)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    manager = Manager(name=name, token_hash=hash_token(token), is_admin=admin, venues=venues)
    session.add(manager)
    session.flush()
    return manager, token


def authenticate(session: Session, token: str | None) -> Manager | None:
    """The manager holding this token, or None."""
    if not token:
        return None
    return session.execute(select(Manager).where(Manager.token_hash == hash_token(token))
                           ).scalar_one_or_none()


def bearer_token(header: str | None) -> str | None:
    """The token in an ``Authorization: Bearer ...`` header."""
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def require(manager: Manager | None) -> Manager:
    """The manager, or Unauthorized."""
    if manager is None:
        raise Unauthorized("a valid manager token is required (Authorization: Bearer ...)")
    return manager


def require_admin(manager: Manager | None) -> Manager:
    """An administrator, or Unauthorized/Forbidden."""
    if not require(manager).is_admin:
        raise Forbidden("only administrators can do this")
    return manager


def can_manage(manager: Manager | None, venue_id: str) -> bool:
    """Whether this manager may attach and delete clips of this venue."""
    if manager is None:
        return False
    return manager.is_admin or any(v.id == venue_id for v in manager.venues)


def require_venue(manager: Manager | None, venue_id: str) -> Manager:
    """A manager allowed to manage this venue, or Unauthorized/Forbidden."""
    if not can_manage(require(manager), venue_id):
        raise Forbidden(f"you do not manage venue {venue_id!r}")
    return manager
