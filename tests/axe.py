"""Automated accessibility audits with axe-core (from the npm registry, web/node_modules).

``audit(page)`` injects axe into a Playwright page and returns its violations at or above
``impact`` ("minor" < "moderate" < "serious" < "critical"), as short readable strings, so a
test can ``assert not audit(page), ...`` and see what to fix.
"""

from __future__ import annotations

from pathlib import Path

AXE = Path(__file__).resolve().parent.parent / "web" / "node_modules" / "axe-core" / "axe.min.js"
IMPACTS = ("minor", "moderate", "serious", "critical")
# WCAG 2.x A and AA, and axe's best practices (heading order, landmarks, ...).
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def audit(page, *, impact: str = "moderate", exclude: list[str] | None = None,
          disable: list[str] | None = None) -> list[str]:
    """Run axe on the page as it is now; the violations at ``impact`` or above.

    ``exclude``: CSS selectors left out (third-party content such as map tiles);
    ``disable``: rule ids not run, each to be justified where it is used.
    """
    assert AXE.is_file(), f"{AXE} missing: run scripts/setup (npm ci in web/)"
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, which the page's Content-Security-Policy
        # does not govern (a <script> tag would be blocked by script-src 'self').
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    context = {"exclude": [[s] for s in exclude or []]} if exclude else None
    options = {"runOnly": {"type": "tag", "values": TAGS},
               "rules": {rule: {"enabled": False} for rule in disable or []}}
    result = page.evaluate("([context, options]) => axe.run(context || document, options)",
                           [context, options])
    floor = IMPACTS.index(impact)
    found = []
    for v in result["violations"]:
        if IMPACTS.index(v.get("impact") or "minor") < floor:
            continue
        targets = "; ".join(" ".join(map(str, n["target"])) for n in v["nodes"][:5])
        found.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes): {v['help']} "
                     f"-- {targets}")
    return found
