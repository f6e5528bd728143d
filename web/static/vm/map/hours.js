/* "Open now" from the registry's English opening hours, on the Asia/Shanghai clock. Pure:
 * no DOM, no map. */

const CHINA_MS = 8 * 3600 * 1000;  // Asia/Shanghai: UTC+8 all year (no summer time)
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov',
  'dec'];

/** The catalogue key of each state's badge text. */
export const OPEN_TEXT = {open: 'map_open_now', closed: 'map_closed_now',
  unknown: 'map_hours_unknown'};

/** "Tue-Sun" -> [2..6,0]; "Daily" -> all; "Mon" -> [1]; null if not understood. */
function dayList(spec) {
  spec = spec.toLowerCase();
  if (spec === 'daily') return [0, 1, 2, 3, 4, 5, 6];
  const m = /^([a-z]{3})(?:-([a-z]{3}))?$/.exec(spec);
  if (!m || DAYS.indexOf(m[1]) < 0 || (m[2] && DAYS.indexOf(m[2]) < 0)) return null;
  let a = DAYS.indexOf(m[1]);
  const b = m[2] ? DAYS.indexOf(m[2]) : a, out = [a];
  while (a !== b) {
    a = (a + 1) % 7;
    out.push(a);
  }
  return out;
}

function minutes(hm) {
  const m = /^(\d{1,2}):(\d{2})$/.exec(hm);
  return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
}

/** One season's rules ("Tue-Sun 08:30-17:00 (Nov-Mar to 16:30), closed Mon"), or null. */
function parseRules(text) {
  const rules = [];
  let ok = true;
  text.split(/,\s*(?![^()]*\))/).forEach(function (part) {
    part = part.trim();
    let m;
    if ((m = /^closed\s+(\S+)$/i.exec(part))) {
      const days = dayList(m[1]);
      if (!days) ok = false;
      else rules.push({days: days, closed: true});
    } else if ((m = /^(\S+)\s+(\d{1,2}:\d{2})-(\d{1,2}:\d{2})(?:\s+\(([a-z]{3})-([a-z]{3}) to (\d{1,2}:\d{2})\))?$/i.exec(part))) {
      const d = dayList(m[1]);
      if (!d) ok = false;
      else {
        const r = {days: d, from: minutes(m[2]), to: minutes(m[3])};
        if (m[4]) {
          const a = MONTHS.indexOf(m[4].toLowerCase()), b = MONTHS.indexOf(m[5].toLowerCase());
          if (a < 0 || b < 0) ok = false;
          r.alt = {a: a, b: b, to: minutes(m[6])};
        }
        rules.push(r);
      }
    } else {
      ok = false;
    }
  });
  return ok && rules.length ? rules : null;
}

function openBy(rules, when) {
  const day = when.getUTCDay(), now = when.getUTCHours() * 60 + when.getUTCMinutes();
  const month = when.getUTCMonth();
  let open = false;
  rules.forEach(function (r) {
    if (r.closed || r.days.indexOf(day) < 0) return;
    let to = r.to;
    if (r.alt && (r.alt.a <= r.alt.b ? month >= r.alt.a && month <= r.alt.b
      : month >= r.alt.a || month <= r.alt.b)) to = r.alt.to;
    if (now >= r.from && now < to) open = true;
  });
  return open;
}

/**
 * 'open', 'closed' or 'unknown' for the registry's English opening hours at `date` (a
 * Date; now if left out), on the Asia/Shanghai clock whatever the phone's time zone.
 * Understood: "Daily 07:00-20:00", "Tue-Sun 09:00-17:00, closed Mon", several day
 * ranges, "(Nov-Mar to 16:30)", "Open 24 hours", and "Summer ...; winter ..." where both
 * seasons agree. Anything else (and every public holiday) is 'unknown'.
 */
export function openState(hoursText, date) {
  if (!hoursText) return 'unknown';
  const s = String(hoursText).trim();
  if (/^open 24 hours$/i.test(s)) return 'open';
  const when = new Date((date || new Date()).getTime() + CHINA_MS);
  const seasons = s.split(/\s*;\s*/), answers = [];
  for (let i = 0; i < seasons.length; i++) {
    let text = seasons[i];
    if (seasons.length > 1) {
      const m = /^(summer|winter)\s+(.*)$/i.exec(text);
      if (!m) return 'unknown';
      text = 'Daily ' + m[2];
    }
    const rules = parseRules(text);
    if (!rules) return 'unknown';
    answers.push(openBy(rules, when));
  }
  if (answers.some(function (a) { return a !== answers[0]; })) return 'unknown';
  return answers[0] ? 'open' : 'closed';
}
