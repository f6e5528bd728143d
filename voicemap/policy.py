"""Who may do what: the one place the access rules are written.

A principal is the signed-in :class:`~voicemap.models.Manager` (an API token or a /manage
session) or None (nobody). Views and CLI commands ask here before they call a service; the
services that act for a principal ask here too, so that a rule cannot be skipped. The
command line is the operator: its commands pass ``None`` as the reviewer or deleter where
the service says so (clips.review, clips.delete), and are not policed here.

The rules:

* a venue's clips are managed (attached, seen while pending, deleted) by a manager of that
  venue (any of them, not only the uploader) or an administrator;
* a clip's title and transcript are edited, and its audio replaced, by the same people who
  may delete it (a manager of its venue or an administrator);
* reviewing (publishing, rejecting) and the review queue are for administrators;
* a clip's private fields (guardian, uploader, review notes) are shown to administrators
  and to the manager who uploaded it;
* works are scored only by jurors (managers made with ``--juror --campaign ID``), and only
  those of their own campaign; neither venue managers nor administrators score.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import Forbidden, Unauthorized

if TYPE_CHECKING:
    from .models import Clip, Manager


def require_signed_in(principal: Manager | None) -> Manager:
    """The principal, or Unauthorized."""
    if principal is None:
        raise Unauthorized("a valid manager token is required (Authorization: Bearer ...)")
    return principal


def is_admin(principal: Manager | None) -> bool:
    """Whether the principal is an administrator."""
    return principal is not None and principal.is_admin


def require_admin(principal: Manager | None) -> Manager:
    """An administrator, or Unauthorized/Forbidden."""
    if not require_signed_in(principal).is_admin:
        raise Forbidden("only administrators can do this")
    return principal


def can_manage_venue(principal: Manager | None, venue_id: str) -> bool:
    """Whether the principal manages this venue: one of its managers, or an administrator."""
    if principal is None:
        return False
    return principal.is_admin or any(v.id == venue_id for v in principal.venues)


def require_venue_manager(principal: Manager | None, venue_id: str) -> Manager:
    """A manager of this venue or an administrator, or Unauthorized/Forbidden."""
    if not can_manage_venue(require_signed_in(principal), venue_id):
        raise Forbidden(f"you do not manage venue {venue_id!r}")
    return principal


def require_play_counts(principal: Manager | None, venue_id: str) -> Manager:
    """Who sees a venue's play counts (chart and CSV): its managers and administrators. The
    counts hold nothing personal, but a venue's audience is its own to report."""
    return require_venue_manager(principal, venue_id)


def can_see_private(principal: Manager | None, clip: Clip) -> bool:
    """Whether the principal sees the clip's private fields: an administrator or its
    uploader."""
    return principal is not None and (principal.is_admin or clip.uploaded_by == principal.id)


def can_manage_clip(principal: Manager | None, clip: Clip) -> bool:
    """Whether the principal may edit, replace or delete this clip: a manager of its venue
    or an administrator."""
    return can_manage_venue(principal, clip.venue_id)


def require_clip_manager(principal: Manager | None, clip: Clip) -> Manager:
    """A manager of the clip's venue or an administrator, or Unauthorized/Forbidden."""
    return require_venue_manager(principal, clip.venue_id)


def is_juror(principal: Manager | None, campaign_id: str | None = None) -> bool:
    """Whether the principal is a juror (of ``campaign_id``, when given)."""
    return (principal is not None and principal.juror_campaign_id is not None
            and (campaign_id is None or principal.juror_campaign_id == campaign_id))


def require_juror(principal: Manager | None, campaign_id: str | None = None) -> Manager:
    """A juror (of ``campaign_id``, when given), or Unauthorized/Forbidden."""
    if not is_juror(require_signed_in(principal)):
        raise Forbidden("only the campaign's jurors score works")
    if not is_juror(principal, campaign_id):
        raise Forbidden(f"you are a juror of campaign {principal.juror_campaign_id!r}, not "
                        f"{campaign_id!r}")
    return principal
