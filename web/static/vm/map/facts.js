/* A venue's ages and access facts as interface text, by the table the venue page reads too
 * (web/static/vm/facts.json; voicemap/venue_text.py ages_text and access_facts). Pure: no DOM. */
import {fmt} from './format.js';

function ageMatches(facts, cond, value, side) {
  const v = value === undefined ? null : value;
  const unbounded = facts.ages.unbounded[side].indexOf(v) >= 0;
  if (cond === 'bounded') return !unbounded;
  if (cond === 'unbounded') return unbounded;
  return v === cond;
}

/** "3–12 years", "6 years and up", "All ages", ... or null when nothing is known. */
export function agesText(p, t, facts) {
  const lo = p.min_age, hi = p.max_age;
  for (const rule of facts.ages.rules) {
    if (ageMatches(facts, rule.min, lo, 'min') && ageMatches(facts, rule.max, hi, 'max')) {
      return fmt(t[rule.text], {min: lo, max: hi}, hi === null || hi === undefined ? lo : hi);
    }
  }
  return null;
}

/** [is it so, label] for each access fact the registry knows. */
export function accessFacts(p, t, facts) {
  const out = [];
  facts.access.forEach(function (f) {
    const v = p[f.field];
    if (v === true || v === false) out.push([v, t[v ? f.yes : f.no]]);
  });
  return out;
}
