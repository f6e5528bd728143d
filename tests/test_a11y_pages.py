# ruff: noqa: F811 (the works pages' fixtures, imported, are used by name)
"""Automated accessibility audits (axe-core, WCAG 2.x A/AA and best practices) of the pages
families read besides the map and venue pages (audited in their own browser tests): the
works gallery, a work's page, the submission and withdrawal pages, the information pages,
and the OGC API's HTML, in both languages, on a phone. SpatiaLite (the markup does not
depend on the backend)."""

from __future__ import annotations

import pytest
from axe import audit

pytest.importorskip("playwright.sync_api")
from test_works_browser import PHONE, no_sideways_scroll, open_page, site  # noqa: E402,F401

from voicemap import db, demo  # noqa: E402

PAGES = ["/works", "/works/{work}", "/campaigns/me-and-my-city/submit", "/works/withdraw",
         "/info", "/info/{section}", "/info/{section}/{slug}", "/ogc",
         "/ogc/collections/venues", "/ogc/collections/venues/items"]


@pytest.fixture(scope="module")
def article(site):
    from voicemap import create_app

    base = site[2]
    app = create_app({"DATABASE_URL": f"sqlite:///{base / 'vm.sqlite'}",
                      "MEDIA_DIR": str(base / "media"), "SECRET_KEY": "browser-test"})
    with app.app_context():
        made = demo.make_articles(db.get_session())
        first = made[0]
        found = first.section, first.slug
    app.extensions["voicemap.engine"].dispose()
    return found


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("path", PAGES)
def test_page_passes_an_accessibility_audit(open_page, site, article, path, lang):
    concrete = path.format(work=site[1], section=article[0], slug=article[1])
    if not path.startswith("/ogc"):  # OGC pages refuse unknown parameters; English only
        concrete += f"?lang={lang}"
    page = open_page(concrete, PHONE, locale="zh-CN" if lang == "zh" else "en-US")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.title"), concrete
    found = audit(page)
    assert not found, "\n".join(found)
    assert no_sideways_scroll(page)
