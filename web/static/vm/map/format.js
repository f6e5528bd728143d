/* Building DOM safely and formatting interface text: the map's modules share these.
 *
 * A message from the page's catalogue (cfg.t) is either a string or, where it counts
 * something, an object keyed by CLDR plural category ({"one": ..., "other": ...}); fmt()
 * picks the form with Intl.PluralRules for the page's language (falling back to "other")
 * and fills placeholders written either way: "{n}" or gettext's "%(n)s" / "%(n)d".
 */

const SVGNS = 'http://www.w3.org/2000/svg';
const ICONS = {
  speaker: [['path', {d: 'M3 9v6h4l5 4V5L7 9H3z', fill: 'currentColor'}],
    ['path', {d: 'M15.5 8.5a5 5 0 0 1 0 7M18 6a8.5 8.5 0 0 1 0 12', fill: 'none',
      stroke: 'currentColor', 'stroke-width': '2', 'stroke-linecap': 'round'}]],
  play: [['path', {d: 'M8 5v14l11-7z', fill: 'currentColor'}]],
  pause: [['path', {d: 'M7 5h4v14H7zM13 5h4v14h-4z', fill: 'currentColor'}]]
};

export const HTML_LANG = {zh: 'zh-CN', en: 'en'};

/** An inline SVG icon (decorative: hidden from screen readers). */
export function icon(name, size) {
  const s = document.createElementNS(SVGNS, 'svg');
  s.setAttribute('viewBox', '0 0 24 24');
  s.setAttribute('width', String(size || 20));
  s.setAttribute('height', String(size || 20));
  s.setAttribute('aria-hidden', 'true');
  s.setAttribute('focusable', 'false');
  ICONS[name].forEach(function (part) {
    const e = document.createElementNS(SVGNS, part[0]);
    Object.keys(part[1]).forEach(function (k) { e.setAttribute(k, part[1][k]); });
    s.appendChild(e);
  });
  return s;
}

/** Build an element: text goes in as textContent, never as HTML. */
export function h(tag, props, children) {
  const e = document.createElement(tag);
  Object.keys(props || {}).forEach(function (k) {
    const v = props[k];
    if (v === null || v === undefined || v === false) return;
    if (k === 'text') e.textContent = String(v);
    else if (k === 'class') e.className = v;
    else if (k.slice(0, 2) === 'on') e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  });
  (children || []).forEach(function (c) {
    if (c !== null && c !== undefined && c !== false) {
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
  });
  return e;
}

let locale = 'en';
const rules = {};

/** The page's language, for plural forms. */
export function setLocale(lang) { locale = lang; }

/** The form of `message` for `count`: a string as it is, else message[category] or "other". */
export function plural(message, count, lang) {
  if (message === null || typeof message !== 'object') return message;
  const l = lang || locale;
  let cat = 'other';
  try {
    rules[l] = rules[l] || new Intl.PluralRules(l);
    cat = rules[l].select(Number(count));
  } catch (e) {
    cat = 'other';
  }
  return message[cat] !== undefined ? message[cat] : message.other;
}

// "{name}" (the catalogue's style today), "%(name)s" / "%(name)d" (gettext's), "%%" (a "%").
const PLACEHOLDER = /\{(\w+)\}|%\((\w+)\)[sd]|%%/g;

function countOf(vars, count) {
  if (count !== undefined) return count;
  return vars && typeof vars.n === 'number' ? vars.n : 1;
}

/**
 * `message` (a string or plural forms) with its placeholders filled from `vars`; the
 * plural form is chosen by `count`, else by a numeric `vars.n`. Unknown placeholders stay.
 */
export function fmt(message, vars, count) {
  const template = String(plural(message, countOf(vars, count)));
  return template.replace(PLACEHOLDER, function (m, a, b) {
    const k = a || b;
    if (!k) return '%';
    return Object.prototype.hasOwnProperty.call(vars || {}, k) ? String(vars[k]) : m;
  });
}

/** A message as nodes, with the values of `dataKeys` wrapped as venue data. */
export function fmtNodes(message, vars, dataKeys, count) {
  const template = String(plural(message, countOf(vars, count)));
  const out = [];
  const re = new RegExp(PLACEHOLDER.source, 'g');
  let last = 0, m;
  while ((m = re.exec(template)) !== null) {
    if (m.index > last) out.push(template.slice(last, m.index));
    const k = m[1] || m[2];
    if (!k) out.push('%');
    else {
      const v = String(vars[k]);
      out.push(dataKeys.indexOf(k) >= 0 ? h('span', {class: 'vm-data', text: v}) : v);
    }
    last = re.lastIndex;
  }
  if (last < template.length) out.push(template.slice(last));
  return out;
}

/** Walking-scale distance: "350 m", "1.2 km", "12 km" (in the page's language). */
/** Haversine on WGS-84 [lon, lat] pairs, in metres: enough to sort a short list. */
export function sphereMetres(a, b) {
  const r = Math.PI / 180, dLat = (b[1] - a[1]) * r, dLon = (b[0] - a[0]) * r;
  const x = Math.sin(dLat / 2) * Math.sin(dLat / 2) + Math.cos(a[1] * r) *
    Math.cos(b[1] * r) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
  return 6371008.8 * 2 * Math.atan2(Math.sqrt(x), Math.sqrt(1 - x));
}

export function formatDistance(metres, t) {
  if (metres < 995) return fmt(t.distance_m, {n: Math.max(10, Math.round(metres / 10) * 10)});
  const km = metres / 1000;
  return fmt(t.distance_km, {n: km < 9.95 ? km.toFixed(1) : String(Math.round(km))},
    km < 9.95 ? Number(km.toFixed(1)) : Math.round(km));
}

export function formatDuration(ms) {
  const s = Math.round(ms / 1000);
  return Math.floor(s / 60) + ':' + ('0' + (s % 60)).slice(-2);
}

/** An http(s) URL, or null (javascript:, data: and the like are dropped). */
export function safeUrl(u) {
  try {
    const url = new URL(u, location.href);
    return (url.protocol === 'http:' || url.protocol === 'https:') ? url : null;
  } catch (e) {
    return null;
  }
}
