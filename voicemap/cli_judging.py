"""The command line of judging: ``voicemap campaign configure|results|award|publish-results|
exhibit`` (on the ``campaign`` group of ``cli_works``). Jurors are made with
``voicemap create-manager NAME --juror --campaign ID``."""

from __future__ import annotations

import click

from .cli import AppContext, pass_ctx, run
from .cli_works import campaign


@campaign.command("configure")
@click.argument("campaign_id", metavar="ID")
@click.option("--criteria", help='Criteria with weights, e.g. "creativity:40,expression:30,'
              'city:30" (fixed once works are scored).')
@click.option("--awards", "award_plan", help='Places per award for --auto, e.g. '
              '"gold:1,silver:2,bronze:3,merit:5".')
@click.option("--min-jurors", type=int, help="The fewest jurors for a work to be ranked.")
@click.option("--judge-pending/--no-judge-pending", default=None,
              help="Whether jurors also see works still pending review.")
@pass_ctx
def campaign_configure(obj: AppContext, campaign_id: str, criteria: str | None,
                       award_plan: str | None, min_jurors: int | None,
                       judge_pending: bool | None) -> None:
    """Set a campaign's judging settings."""
    from . import db, judging

    def go():
        with obj.app.app_context():
            c = judging.configure(db.get_session(), campaign_id, criteria=criteria,
                                  award_plan=award_plan, min_jurors=min_jurors,
                                  judge_pending=judge_pending)
            click.echo(f"campaign {c.id}: criteria {c.criteria}; awards {c.award_plan}; "
                       f"min jurors {c.min_jurors}; pending works judged: "
                       f"{'yes' if c.judge_pending else 'no'}")
    run(go)


@campaign.command("results")
@click.argument("campaign_id", metavar="ID")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False),
              help="Also write the table as CSV (UTF-8 with a byte-order mark).")
@pass_ctx
def campaign_results(obj: AppContext, campaign_id: str, csv_path: str | None) -> None:
    """The ranked results per kind and age group: rank, work, score (the mean of the
    jurors' weighted means), jurors, spread (highest - lowest juror); equal scores share a
    rank (1, 2, 2, 4); works with too few jurors are listed last, unranked."""
    from . import db, judging

    def go():
        with obj.app.app_context():
            entries = judging.results(db.get_session(), campaign_id)
            group = None
            for e in entries:
                if (e.kind, e.age_group) != group:
                    group = (e.kind, e.age_group)
                    click.echo(f"# {e.kind} {e.age_group}")
                d = judging.entry_dict(e)
                score = "-" if e.score is None else f"{e.score:.2f}"
                spread = "-" if e.spread is None else f"{e.spread:.2f}"
                rank = "-" if e.rank is None else str(e.rank)
                note = "\ttoo few jurors" if e.too_few else ""
                click.echo(f"{rank}\t{e.work_id}\t{score}\t{e.jurors} juror(s)\tspread "
                           f"{spread}\t{d['award'] or ''}\t{d['title']}{note}")
            too_few = sum(1 for e in entries if e.too_few)
            click.echo(f"{len(entries)} work(s); {too_few} with too few jurors", err=True)
            if csv_path:
                judging.write_csv(entries, csv_path)
                click.echo(f"wrote {csv_path}", err=True)
    run(go)


@campaign.command("award")
@click.argument("campaign_id", metavar="ID")
@click.argument("work_id", metavar="WORK", required=False)
@click.argument("award", metavar="AWARD", required=False)
@click.option("--auto", is_flag=True, help="Give every group's top places their awards by "
              "the campaign's plan (replacing the campaign's awards).")
@pass_ctx
def campaign_award(obj: AppContext, campaign_id: str, work_id: str | None, award: str | None,
                   auto: bool) -> None:
    """Give WORK an AWARD (gold, silver, bronze, merit, or none), or --auto."""
    from . import db, judging

    if auto == bool(work_id or award) or (not auto and not (work_id and award)):
        raise click.UsageError("give WORK and AWARD, or --auto")

    def go():
        with obj.app.app_context():
            if auto:
                given = judging.auto_award(db.get_session(), campaign_id)
                for wid, name in given.items():
                    if name:
                        click.echo(f"{wid}\t{name}")
                click.echo(f"{sum(1 for a in given.values() if a)} award(s) given", err=True)
            else:
                w = judging.award(db.get_session(), campaign_id, work_id, award)
                click.echo(f"work {w.id}: {w.award or 'no award'}")
    run(go)


@campaign.command("publish-results")
@click.argument("campaign_id", metavar="ID")
@pass_ctx
def campaign_publish(obj: AppContext, campaign_id: str) -> None:
    """Publish the results: the campaign is closed and its awards become public."""
    from . import db, judging

    def go():
        with obj.app.app_context():
            c = judging.publish(db.get_session(), campaign_id)
            click.echo(f"campaign {c.id}: {c.status}; results published")
    run(go)


@campaign.command("exhibit")
@click.argument("campaign_id", metavar="ID")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="The directory to write the set into.")
@click.option("--no-pdf", is_flag=True, help="Do not make exhibition.pdf.")
@pass_ctx
def campaign_exhibit(obj: AppContext, campaign_id: str, out_dir: str, no_pdf: bool) -> None:
    """A printable set: one A4 HTML page per award-winning public work (and all.html),
    catalogue.csv and catalogue.geojson, and exhibition.pdf if WeasyPrint is installed.
    QR codes point at VOICEMAP_PUBLIC_URL."""
    from . import exhibit

    def go():
        done = exhibit.write(obj.app, campaign_id, out_dir, pdf=False if no_pdf else None)
        for p in done["pages"]:
            click.echo(str(p))
        click.echo(f"{len(done['pages'])} page(s); {done['all']}; {done['catalogue']}; "
                   f"{done['geojson']}", err=True)
        click.echo(str(done["pdf"]) if done["pdf"] else (done["pdf_note"] or "no PDF"),
                   err=True)
    run(go)
