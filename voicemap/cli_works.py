"""The command line of campaigns and children's works: ``voicemap campaign ...``,
``voicemap works review ...`` and ``voicemap demo-works`` (registered on ``cli.main``)."""

from __future__ import annotations

import click

from .cli import AppContext, _store_and_limits, main, pass_ctx, run


@main.group("campaign")
def campaign() -> None:
    """"Me and my city" campaigns: create, list, set status."""


@campaign.command("create")
@click.argument("campaign_id", metavar="ID")
@click.option("--title-zh", required=True, help="The title in Chinese.")
@click.option("--title-en", required=True, help="The title in English.")
@click.option("--opens", required=True, help="ISO time; Beijing time unless it has an offset.")
@click.option("--closes", required=True, help="ISO time; Beijing time unless it has an offset.")
@click.option("--kinds", multiple=True,
              help="painting, photo, writing, song (repeat or separate by commas; default all).")
@click.option("--age-groups", multiple=True,
              help="Age groups such as 7-9 (repeat or commas; default 3-6,7-9,10-12,13-17).")
@click.option("--description-zh", help="A description in Chinese.")
@click.option("--description-en", help="A description in English.")
@click.option("--status", default="draft", show_default=True,
              type=click.Choice(["draft", "open", "judging", "closed"]))
@click.option("--criteria", help="Judging criteria with weights "
              '(default "creativity:40,expression:30,city:30").')
@pass_ctx
def campaign_create(obj: AppContext, campaign_id: str, title_zh: str, title_en: str,
                    opens: str, closes: str, kinds: tuple[str, ...],
                    age_groups: tuple[str, ...], description_zh: str | None,
                    description_en: str | None, status: str, criteria: str | None) -> None:
    """Create a campaign (a draft unless --status says otherwise)."""
    from . import db, works

    def go():
        with obj.app.app_context():
            c = works.create_campaign(
                db.get_session(), campaign_id, title_zh=title_zh, title_en=title_en,
                opens=opens, closes=closes, kinds=list(kinds), age_groups=list(age_groups),
                description_zh=description_zh, description_en=description_en, status=status,
                criteria=criteria)
            click.echo(f"campaign {c.id}: {c.status}; criteria {c.criteria}")
    run(go)


@campaign.command("list")
@pass_ctx
def campaign_list(obj: AppContext) -> None:
    """Every campaign: id, status, dates (Beijing time), kinds, age groups."""
    from . import db, works

    def go():
        with obj.app.app_context():
            for c in works.list_campaigns(db.get_session(), public=False):
                d = works.campaign_to_dict(c)
                click.echo(f"{c.id}\t{c.status}\t{d['opens']} - {d['closes']}\t{c.kinds}\t"
                           f"{c.age_groups}\t{c.title_en}")
    run(go)


@campaign.command("set-status")
@click.argument("campaign_id", metavar="ID")
@click.argument("status")
@pass_ctx
def campaign_set_status(obj: AppContext, campaign_id: str, status: str) -> None:
    """Set a campaign's status: draft, open, judging or closed."""
    from . import db, works

    def go():
        with obj.app.app_context():
            c = works.set_status(db.get_session(), campaign_id, status)
            click.echo(f"campaign {c.id}: {c.status}")
    run(go)


@main.group("works")
def works_group() -> None:
    """Children's works."""


@works_group.group("review")
def review() -> None:
    """Review works: list, approve, reject, flag."""


@review.command("list")
@click.option("--all", "show_all", is_flag=True, help="Every work, not only pending ones.")
@pass_ctx
def review_list(obj: AppContext, show_all: bool) -> None:
    """Works waiting for review (id, campaign, kind, age group, title; flags)."""
    from . import db, works

    def go():
        with obj.app.app_context():
            found = works.review_queue(db.get_session(), None if show_all else "pending")
            for w in found:
                marks = ",".join(m for m, on in (("flagged", w.flagged),
                                                 ("no-public-consent", not w.consent_public))
                                 if on)
                click.echo(f"{w.id}\t{w.status}\t{w.campaign_id}\t{w.kind}\t{w.age_group}\t"
                           f"{w.title}" + (f"\t[{marks}]" if marks else ""))
            click.echo(f"{len(found)} work(s)")
    run(go)


def _decide(obj: AppContext, work_id: str, action: str, reason: str | None = None) -> None:
    from . import db, works

    def go():
        with obj.app.app_context():
            w = works.review(db.get_session(), work_id, None, action, reason)
            click.echo(f"work {w.id}: {w.status}" + (", flagged" if w.flagged else ""))
    run(go)


@review.command("approve")
@click.argument("work_id", metavar="ID")
@pass_ctx
def review_approve(obj: AppContext, work_id: str) -> None:
    """Approve a work (public if its guardian consented and it is not flagged)."""
    _decide(obj, work_id, "approve")


@review.command("reject")
@click.argument("work_id", metavar="ID")
@click.option("--reason", required=True, help="Why (kept for the administrators).")
@pass_ctx
def review_reject(obj: AppContext, work_id: str, reason: str) -> None:
    """Reject a work, with a reason."""
    _decide(obj, work_id, "reject", reason)


@review.command("flag")
@click.argument("work_id", metavar="ID")
@click.option("--reason", help="What personal information (a face, a full name, a badge).")
@pass_ctx
def review_flag(obj: AppContext, work_id: str, reason: str | None) -> None:
    """Flag personal information in a work: it may be judged, never shown in public."""
    _decide(obj, work_id, "flag", reason)


@main.command("demo-works")
@pass_ctx
def demo_works(obj: AppContext) -> None:
    """Create the open demo campaign me-and-my-city with a few labelled synthetic works."""
    from . import db, demo

    def go():
        store, limits = _store_and_limits(obj.app)
        with obj.app.app_context():
            made = demo.make_works(db.get_session(), store, limits,
                                   tuple(obj.app.config["SERVICE_AREA"]))
            click.echo(f"{len(made)} synthetic demo work(s) added")
    run(go)


from . import cli_judging  # noqa: E402,F401  judging commands on the campaign group
