"""The arithmetic of judging, with no database: criteria and their weights, one juror's
weighted score, a work's score over its jurors, the spread between them, ranking with ties,
and the award plan.

- A juror's score of a work is the weighted mean of their criterion scores (0-10):
  ``sum(weight * score) / sum(weights)``.
- A work's score is the mean of its jurors' weighted scores (each juror counts once; every
  juror scores every criterion, so this is also the weighted mean of the criteria's means).
- The spread is the highest juror score minus the lowest (0 with one juror): a large spread
  shows the organisers where the jurors disagree.
- Ranking is "standard competition" ranking within each (kind, age group): equal scores
  (compared after rounding to 4 decimals, so that float noise never splits a tie) share a
  rank, and the next rank skips as many places (1, 2, 2, 4). Works that fewer than the
  campaign's minimum number of jurors scored are not ranked; they are listed apart.
- The award plan (``gold:1,silver:1,bronze:1,merit:3``) gives ranks 1 to N their awards in
  that order, by rank: works tied at a rank share its award (two works tied first are both
  gold, and the next work, ranked 3, takes the third place's award).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import BadRequest

DEFAULT_CRITERIA = "creativity:40,expression:30,city:30"
AWARDS = ("gold", "silver", "bronze", "merit")
DEFAULT_AWARD_PLAN = "gold:1,silver:1,bronze:1"
DEFAULT_MIN_JURORS = 2
MIN_SCORE, MAX_SCORE = 0, 10
NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
TIE_DIGITS = 4


def parse_criteria(value: str | None) -> list[tuple[str, float]]:
    """``name:weight,...`` checked: names are lowercase words, weights positive numbers; the
    default (creativity 40, expression 30, city 30) when empty."""
    value = (value or "").strip() or DEFAULT_CRITERIA
    out: list[tuple[str, float]] = []
    for part in (p.strip() for p in value.split(",")):
        name, sep, weight = part.partition(":")
        name = name.strip().lower()
        if not sep or not NAME.match(name):
            raise BadRequest(f"criterion {part!r} must look like creativity:40 (a lowercase "
                             "name, a colon and a weight)", param="criteria")
        try:
            w = float(weight)
        except ValueError:
            w = -1.0
        if not (0 < w <= 1000):
            raise BadRequest(f"the weight of {name!r} must be a positive number",
                             param="criteria")
        if any(n == name for n, _ in out):
            raise BadRequest(f"criterion {name!r} is given twice", param="criteria")
        out.append((name, w))
    if len(out) > 12:
        raise BadRequest("at most 12 criteria", param="criteria")
    return out


def format_criteria(criteria: list[tuple[str, float]]) -> str:
    return ",".join(f"{n}:{_num(w)}" for n, w in criteria)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def parse_award_plan(value: str | None) -> list[tuple[str, int]]:
    """``gold:1,silver:1,bronze:1,merit:3``: how many places each award covers, in the
    order gold, silver, bronze, merit (an award left out covers none)."""
    value = (value or "").strip() or DEFAULT_AWARD_PLAN
    counts: dict[str, int] = {}
    for part in (p.strip() for p in value.split(",")):
        name, sep, n = part.partition(":")
        name = name.strip().lower()
        if name not in AWARDS or not sep or not n.strip().isdigit() or int(n) > 100:
            raise BadRequest(f"award plan item {part!r} must look like gold:1 (awards "
                             f"{', '.join(AWARDS)}; 0-100 places)", param="awards")
        if name in counts:
            raise BadRequest(f"award {name!r} is given twice", param="awards")
        counts[name] = int(n)
    return [(a, counts[a]) for a in AWARDS if counts.get(a)]


def format_award_plan(plan: list[tuple[str, int]]) -> str:
    return ",".join(f"{a}:{n}" for a, n in plan)


def check_scores(criteria: list[tuple[str, float]], body: Any) -> dict[str, float]:
    """A juror's scores: every criterion, each a number from 0 to 10, nothing else.

    :raises BadRequest: naming the criterion (``param``) that is missing, unknown or out of
        range.
    """
    if not isinstance(body, dict):
        raise BadRequest("send the scores as a JSON object such as "
                         + "{" + ", ".join(f'"{n}": 7' for n, _ in criteria) + "}")
    names = [n for n, _ in criteria]
    for key in body:
        if key not in names:
            raise BadRequest(f"{key!r} is not a criterion of this campaign (criteria: "
                             f"{', '.join(names)})", param=str(key))
    out = {}
    for name in names:
        if name not in body:
            raise BadRequest(f"{name} is required: every criterion must be scored",
                             param=name)
        value = body[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise BadRequest(f"{name} must be a number from {MIN_SCORE} to {MAX_SCORE}",
                             param=name)
        if not (MIN_SCORE <= value <= MAX_SCORE):
            raise BadRequest(f"{name} must be from {MIN_SCORE} to {MAX_SCORE}", param=name)
        out[name] = float(value)
    return out


def weighted(criteria: list[tuple[str, float]], scores: dict[str, float]) -> float:
    """One juror's weighted mean over the criteria."""
    total = sum(w for _, w in criteria)
    return sum(w * float(scores[n]) for n, w in criteria) / total


@dataclass
class Entry:
    """One work in the results."""

    work_id: str
    kind: str
    age_group: str
    juror_scores: list[float] = field(default_factory=list)  # each juror's weighted mean
    score: float | None = None
    spread: float | None = None
    rank: int | None = None
    too_few: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def jurors(self) -> int:
        return len(self.juror_scores)


def summarise(entry: Entry) -> Entry:
    s = entry.juror_scores
    entry.score = sum(s) / len(s) if s else None
    entry.spread = (max(s) - min(s)) if s else None
    return entry


def rank(entries: list[Entry], min_jurors: int) -> list[Entry]:
    """Entries grouped by (kind, age group), each group ranked by score (best first, ties
    share a rank, then by work id for a stable order), the works with too few jurors last
    and unranked. Groups come in the order of ``kinds``/``age_groups`` given by the
    caller's order of the entries' first appearance."""
    groups: dict[tuple[str, str], list[Entry]] = {}
    for e in entries:
        summarise(e)
        e.too_few = e.jurors < max(1, min_jurors)
        groups.setdefault((e.kind, e.age_group), []).append(e)
    out: list[Entry] = []
    for members in groups.values():
        ranked = sorted((e for e in members if not e.too_few),
                        key=lambda e: (-round(e.score, TIE_DIGITS), e.work_id))
        previous, place = None, 0
        for i, e in enumerate(ranked, 1):
            key = round(e.score, TIE_DIGITS)
            if key != previous:
                place, previous = i, key
            e.rank = place
        rest = sorted((e for e in members if e.too_few),
                      key=lambda e: (-e.jurors, e.work_id))
        for e in rest:
            e.rank = None
        out += ranked + rest
    return out


def auto_awards(ranked: list[Entry], plan: list[tuple[str, int]]) -> dict[str, str | None]:
    """work id -> award by the plan (None for ranked works below the plan's places)."""
    places: list[str] = [a for a, n in plan for _ in range(n)]
    out: dict[str, str | None] = {}
    for e in ranked:
        if e.rank is None:
            continue
        out[e.work_id] = places[e.rank - 1] if e.rank <= len(places) else None
    return out
