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

from .errors import BadRequest, NotFound
from .models import Manager, Venue, utcnow

TOKEN_PREFIX = "vm_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_manager(session: Session, name: str, venue_ids: list[str] | None = None,
                   admin: bool = False, juror_campaign: str | None = None
                   ) -> tuple[Manager, str]:
    """A new manager (of these venues, an administrator, or a juror of a campaign) and their
    one-time token, committed."""
    name = name.strip()
    if not name or len(name) > 80:
        raise BadRequest("a manager needs a name of 1 to 80 characters", param="name")
    if juror_campaign is not None:
        from .models import Campaign

        if admin or venue_ids:
            raise BadRequest("a juror is neither an administrator nor a venue manager",
                             param="juror")
        if session.get(Campaign, juror_campaign) is None:
            raise BadRequest(f"no campaign with id {juror_campaign!r}", param="campaign")
    elif not admin and not venue_ids:
        raise BadRequest("a manager needs at least one venue (or --admin)", param="venue")
    venues = []
    for vid in venue_ids or []:
        venue = session.get(Venue, vid)
        if venue is None:
            raise BadRequest(f"no venue with id {vid!r}", param="venue")
        venues.append(venue)
    token = new_token()
    manager = Manager(name=name, token_hash=hash_token(token), is_admin=admin, venues=venues,
                      token_issued_at=utcnow(), juror_campaign_id=juror_campaign)
    session.add(manager)
    session.commit()
    return manager, token


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def authenticate(session: Session, token: str | None) -> Manager | None:
    """The manager holding this token, or None (also when it has been revoked)."""
    if not token:
        return None
    return session.execute(select(Manager).where(Manager.token_hash == hash_token(token),
                                                 Manager.revoked_at.is_(None))
                           ).scalar_one_or_none()


def find_managers(session: Session, who: str) -> list[Manager]:
    """Managers named ``who``, or the one whose id it is."""
    if who.isdigit():
        found = session.get(Manager, int(who))
        if found is not None:
            return [found]
    return list(session.execute(select(Manager).where(Manager.name == who)
                                .order_by(Manager.id)).scalars())


def find_manager(session: Session, who: str) -> Manager:
    """The one manager ``who`` names (a name or an id), or BadRequest/NotFound."""
    found = find_managers(session, who)
    if not found:
        raise NotFound(f"no manager named or numbered {who!r}")
    if len(found) > 1:
        ids = ", ".join(str(m.id) for m in found)
        raise BadRequest(f"{len(found)} managers are named {who!r} (ids {ids}): give the id")
    return found[0]


def revoke(session: Session, manager: Manager) -> None:
    """Stop the manager's token working, and end their /manage sessions, at once."""
    manager.revoked_at = manager.revoked_at or utcnow()
    manager.session_epoch += 1
    session.commit()


def rotate(session: Session, manager: Manager) -> str:
    """Give the manager a new token (the old one stops working at once); the new token.

    A revoked manager is reinstated with the new token.
    """
    token = new_token()
    manager.token_hash = hash_token(token)
    manager.token_issued_at = utcnow()
    manager.revoked_at = None
    manager.session_epoch += 1
    session.commit()
    return token


def sign_out_everywhere(session: Session, manager: Manager) -> None:
    """End every /manage session of this manager (their token keeps working)."""
    manager.session_epoch += 1
    session.commit()


def session_manager(session: Session, manager_id: int | None, epoch: int | None
                    ) -> Manager | None:
    """The manager a /manage session names, or None if it has ended: signed out (the epoch
    moved on), revoked, or gone."""
    manager = session.get(Manager, manager_id) if manager_id else None
    if manager is None or epoch != manager.session_epoch or manager.revoked_at is not None:
        return None
    return manager


def list_managers(session: Session) -> list[Manager]:
    return list(session.execute(select(Manager).order_by(Manager.id)).scalars())


def bearer_token(header: str | None) -> str | None:
    """The token in an ``Authorization: Bearer ...`` header."""
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None
