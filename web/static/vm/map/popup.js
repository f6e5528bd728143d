/* The venue popup: its facts, voice guides (players, transcripts), "go there", and its
 * fitting between the controls. Venue data is untrusted: it goes in as text only. */
import {HTML_LANG, fmtNodes, formatDuration, h, safeUrl} from './format.js';
import {OPEN_TEXT, openState} from './hours.js';
import {accessFacts, agesText} from './facts.js';
// How venue facts read: the table the venue page reads too (voicemap/venue_text.py). The
// bundle (web/bundle.mjs) carries it inline; loaded as modules, it is a JSON module.
import FACTS from '../facts.json' with {type: 'json'};

export function setupPopup(app, vm) {
  const map = app.map, t = app.t, lang = app.lang, other = app.other, cfg = app.cfg;
  const state = app.state, narrow = app.narrow;
  // On phones the popup spans the width, so it must clear the controls stacked at the top.
  // Leaflet's width is the content's: keep content + margins (34) + side gaps (24) on screen.
  const popupWidth = Math.max(200, Math.min(320, window.innerWidth - 58));
  const popup = L.popup({maxWidth: popupWidth, minWidth: Math.min(240, popupWidth),
    className: 'vm-leaflet-popup',
    maxHeight: Math.max(240, Math.round(window.innerHeight * 0.58)),
    autoPanPaddingTopLeft: [12, narrow.matches ? 124 : 20],
    autoPanPaddingBottomRight: [12, narrow.matches ? 84 : 20]});
  const features = {}, clipLists = {};
  function getJson(url) {
    return fetch(url).then(function (r) {
      if (r.status === 404) return null;
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    });
  }
  app.getFeature = function (id) {
    if (!features[id]) features[id] = getJson(cfg.urls.venue + encodeURIComponent(id));
    return features[id];
  };
  app.getClips = vm.getClips = function (id) {
    if (!clipLists[id]) {
      // The server orders them for the page's language (clips.in_page_order).
      clipLists[id] = getJson(cfg.urls.venue + encodeURIComponent(id) + '/clips?lang=' + lang)
        .then(function (d) { return (d && d.clips) || []; })
        .catch(function () { delete clipLists[id]; return []; });
    }
    return clipLists[id];
  };

  function named(p, l) {
    return h('span', {class: 'vm-data', lang: HTML_LANG[l], text: p['name_' + l] || ''});
  }
  function inLang(p, field) {
    // The page language's text, else the other's, with its language marked.
    const l = p[field + '_' + lang] ? lang : (p[field + '_' + other] ? other : null);
    return l ? h('span', {class: 'vm-data', lang: HTML_LANG[l], text: p[field + '_' + l]}) : null;
  }
  // Ages and access read as the venue page's: one table (facts.json) for both.
  function access(p, table) {
    const lis = accessFacts(p, t, table).map(function (f) {
      return h('li', {class: f[0] ? 'vm-yes' : 'vm-no', text: f[1]});
    });
    return lis.length ? h('ul', {class: 'vm-access'}, lis) : null;
  }
  function clipLangLabel(code) {
    const base = String(code || '').toLowerCase().split('-')[0];
    return t['clip_lang_' + base] || t.clip_lang_other;
  }

  /** A player for one clip: label, <audio preload=none>, transcript one tap away. */
  function clipFigure(c) {
    const caption = h('figcaption', {class: 'vm-clip-caption'}, [
      h('span', {class: 'vm-clip-lang', text: clipLangLabel(c.lang)}), ' · ']
      .concat(c.synthetic ? [t.synthetic_voice]
        : fmtNodes(t.narrator, {name: c.narrator_name, age: c.narrator_age}, ['name'],
          c.narrator_age))
      .concat(c.duration_ms ? [' · ' + formatDuration(c.duration_ms)] : []));
    const audio = h('audio', {controls: true, preload: 'none', src: c.audio_url,
      lang: HTML_LANG[c.lang] || c.lang, 'data-duration-ms': c.duration_ms || null});
    const fig = h('figure', {class: 'vm-clip', 'data-clip': c.id}, [
      c.title ? h('p', {class: 'vm-clip-title vm-data', text: c.title}) : null,
      caption, audio,
      h('details', {class: 'vm-transcript'}, [h('summary', {text: t.transcript}),
        h('p', {class: 'vm-data', text: c.transcript || ''})])
    ]);
    if (window.vmPlayer) window.vmPlayer.enhance(audio, t);  // the known duration, player.js
    return fig;
  }

  /** "Go there" (map apps) and share, from go.js: the same links as the venue page's. */
  function goThere(f, table) {
    if (!window.vmGo) return null;
    const c = f.geometry.coordinates;
    const url = new URL(cfg.urls.page + encodeURIComponent(f.properties.id), location.href).href;
    return window.vmGo.block(h, f.properties, c[0], c[1], t, lang, url,
      table.map_apps);
  }

  function hours(p) {
    // Chinese hours (opening_hours_zh) on Chinese pages, English (opening_hours) on
    // English ones, else whichever the venue has, its language marked.
    const zh = p.opening_hours_zh, en = p.opening_hours;
    const l = lang === 'zh' ? (zh ? 'zh' : (en ? 'en' : null)) : (en ? 'en' : (zh ? 'zh' : null));
    return l ? h('span', {class: 'vm-data', lang: HTML_LANG[l], text: l === 'zh' ? zh : en})
      : null;
  }

  /** The hours with "Open now" / "Closed now" / "Hours unknown" (Asia/Shanghai clock). */
  function withOpenState(p, shown) {
    const open = openState(p.opening_hours);
    const badge = h('span', {class: 'vm-open vm-open-' + open, text: t[OPEN_TEXT[open]]});
    if (!shown) return badge;
    return h('span', {}, [shown, ' · ', badge]);
  }

  let popupSeq = 0;
  function venueBody(f, clips, table) {
    const p = f.properties, cat = app.catById[p.category] || app.cats[0];
    const id = 'vm-pop-' + (++popupSeq);
    const facts = h('dl', {class: 'vm-facts'});
    function fact(label, value) {
      if (value) facts.appendChild(h('div', {}, [h('dt', {text: label}), h('dd', {}, [value])]));
    }
    fact(t.address, inLang(p, 'address'));
    fact(t.hours, withOpenState(p, hours(p)));
    const a = agesText(p, t, table);
    fact(t.ages, a ? document.createTextNode(a) : null);
    fact(t.access, access(p, table));
    const site = p.website ? safeUrl(p.website) : null;
    fact(t.website, site ? h('a', {class: 'vm-data', href: site.href, target: '_blank',
      rel: 'noopener noreferrer nofollow', text: site.hostname}) : null);
    const about = inLang(p, 'description');
    const guides = h('section', {class: 'vm-clips'}, [h('h3', {text: t.voice_guides})]);
    if (clips.length) clips.forEach(function (c) { guides.appendChild(clipFigure(c)); });
    else guides.appendChild(h('p', {class: 'vm-muted', text: t.no_guides}));
    return h('article', {class: 'vm-popup', 'aria-labelledby': id, 'data-venue': p.id}, [
      h('h2', {class: 'vm-name', id: id, tabindex: '-1'}, [named(p, lang)]),
      h('p', {class: 'vm-name-alt'}, [named(p, other)]),
      h('p', {class: 'vm-cat'}, [h('span', {class: 'vm-swatch vm-c-' + cat.id,
        'aria-hidden': 'true', text: cat.icon}), cat.label]),
      guides,
      goThere(f, table),
      facts,
      about ? h('p', {class: 'vm-about'}, [about]) : null,
      h('p', {class: 'vm-more'}, [h('a', {href: cfg.urls.page + encodeURIComponent(p.id) +
        '?lang=' + lang, text: t.open_page})])
    ]);
  }

  app.openVenue = vm.openVenue = function (id, latlng, feature) {
    const box = h('div', {class: 'vm-popup-box'}, [h('p', {class: 'vm-muted', text: t.loading})]);
    fitPopup();
    popup.setLatLng(latlng).setContent(box).openOn(map);
    state.venue = id;
    app.saveUrlSoon();
    Promise.all([feature ? Promise.resolve(feature) : app.getFeature(id), app.getClips(id)])
      .then(function (r) {
        if (state.venue !== id) return;
        box.textContent = '';
        if (!r[0]) {
          box.appendChild(h('p', {class: 'vm-muted', text: t.load_failed}));
          return;
        }
        box.appendChild(venueBody(r[0], r[1], FACTS));
        // The popup has grown: fit it again; update() pans it clear of the controls
        // (autoPan, with the padding fitPopup has just set), stopping any pan under way.
        fitPopup();
        popup.update();
        const heading = box.querySelector('.vm-name');
        if (heading) heading.focus({preventScroll: true});
      })
      .catch(function () {
        box.textContent = '';
        box.appendChild(h('p', {class: 'vm-muted', text: t.load_failed}));
      });
  };

  map.on('popupopen', function (e) {
    const b = e.popup.getElement().querySelector('.leaflet-popup-close-button');
    if (b) {
      b.setAttribute('aria-label', t.close);
      b.title = t.close;
    }
  });
  map.on('popupclose', function (e) {
    const el = e.popup.getElement();
    if (el) Array.prototype.forEach.call(el.querySelectorAll('audio'), function (a) { a.pause(); });
    if (e.popup === popup) {
      state.venue = null;
      app.saveUrlSoon();
    }
  });

  // --- fitting popups: clear of the controls on every phone ------------------------------
  /** Set the popup's auto-pan padding and height from where the controls are now. */
  function fitPopup() {
    const box = map.getContainer().getBoundingClientRect(), w = box.width, hgt = box.height;
    let top = 12, bottom = 12, left = 12;
    function each(sel, fn) {
      Array.prototype.forEach.call(document.querySelectorAll(sel), function (e) {
        const r = e.getBoundingClientRect();
        if (r.width && r.height) fn(r);
      });
    }
    if (narrow.matches) {
      // Phones: zoom, layers and legend across the top; the actions and any open sheet
      // across the bottom. The popup spans the width, so it goes between them.
      each('.leaflet-top .leaflet-control', function (r) {
        top = Math.max(top, r.bottom - box.top + 8);
      });
      each('.vm-actions .vm-btn, .vm-sheet', function (r) {
        bottom = Math.max(bottom, box.bottom - r.top + 8);
      });
    } else {
      top = 20;
      bottom = 20;
      each('.vm-sheet', function (r) { left = Math.max(left, r.right - box.left + 12); });
      each('.vm-actions .vm-btn', function (r) {
        if (r.right - box.left > left) bottom = Math.max(bottom, box.bottom - r.top + 8);
      });
    }
    const o = popup.options;
    // Content + margins (34) + the side gaps stay on screen.
    o.maxWidth = Math.max(180, Math.min(320, w - left - 12 - 34));
    o.minWidth = Math.min(240, o.maxWidth);
    o.autoPanPaddingTopLeft = L.point(left, top);
    o.autoPanPaddingBottomRight = L.point(12, bottom);
    // The room between them, less the content's margins (28), the tip (20) and the
    // marker's half height (14); a taller popup scrolls inside itself.
    const room = hgt - top - bottom - 62;
    o.maxHeight = Math.max(120, narrow.matches ? room
      : Math.min(room, Math.round(window.innerHeight * 0.62)));
  }
  vm.fitPopup = fitPopup;
  window.addEventListener('resize', function () {
    if (map.hasLayer(popup)) {
      fitPopup();
      popup.update();
    }
  });
}
