/* voicemap's map page.
 *
 * Folium builds the shell (map, marker cluster, one sub-group per category, layer control)
 * and calls voicemap.start() with those objects. Everything else happens here: venues come
 * from /api/map/venues for the view (compact rows, or grid counts when a view holds too
 * many), popups and the near-me list are built as DOM with textContent (venue data is
 * untrusted), audio plays only from a tap, and the URL keeps the view so it can be shared.
 * Coordinates from the server are WGS-84; with a GCJ-02 basemap they are shifted for display
 * and shifted back before anything is sent to the server.
 */
(function () {
  'use strict';

  var SVGNS = 'http://www.w3.org/2000/svg';
  var ICONS = {
    speaker: [['path', {d: 'M3 9v6h4l5 4V5L7 9H3z', fill: 'currentColor'}],
      ['path', {d: 'M15.5 8.5a5 5 0 0 1 0 7M18 6a8.5 8.5 0 0 1 0 12', fill: 'none',
        stroke: 'currentColor', 'stroke-width': '2', 'stroke-linecap': 'round'}]],
    play: [['path', {d: 'M8 5v14l11-7z', fill: 'currentColor'}]],
    pause: [['path', {d: 'M7 5h4v14H7zM13 5h4v14h-4z', fill: 'currentColor'}]]
  };

  /** An inline SVG icon (decorative: hidden from screen readers). */
  function icon(name, size) {
    var s = document.createElementNS(SVGNS, 'svg');
    s.setAttribute('viewBox', '0 0 24 24');
    s.setAttribute('width', String(size || 20));
    s.setAttribute('height', String(size || 20));
    s.setAttribute('aria-hidden', 'true');
    s.setAttribute('focusable', 'false');
    ICONS[name].forEach(function (part) {
      var e = document.createElementNS(SVGNS, part[0]);
      Object.keys(part[1]).forEach(function (k) { e.setAttribute(k, part[1][k]); });
      s.appendChild(e);
    });
    return s;
  }

  /** Build an element: text goes in as textContent, never as HTML. */
  function h(tag, props, children) {
    var e = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) {
      var v = props[k];
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

  function fmt(template, vars) {
    return template.replace(/\{(\w+)\}/g, function (m, k) {
      return Object.prototype.hasOwnProperty.call(vars, k) ? String(vars[k]) : m;
    });
  }

  /** A template as nodes, with the values of `dataKeys` wrapped as venue data. */
  function fmtNodes(template, vars, dataKeys) {
    var out = [];
    var re = /\{(\w+)\}/g, last = 0, m;
    while ((m = re.exec(template)) !== null) {
      if (m.index > last) out.push(template.slice(last, m.index));
      var v = String(vars[m[1]]);
      out.push(dataKeys.indexOf(m[1]) >= 0 ? h('span', {class: 'vm-data', text: v}) : v);
      last = re.lastIndex;
    }
    if (last < template.length) out.push(template.slice(last));
    return out;
  }

  /** Walking-scale distance: "350 m", "1.2 km", "12 km" (in the page's language). */
  function formatDistance(metres, t) {
    if (metres < 995) return fmt(t.distance_m, {n: Math.max(10, Math.round(metres / 10) * 10)});
    var km = metres / 1000;
    return fmt(t.distance_km, {n: km < 9.95 ? km.toFixed(1) : String(Math.round(km))});
  }

  function formatDuration(ms) {
    var s = Math.round(ms / 1000);
    return Math.floor(s / 60) + ':' + ('0' + (s % 60)).slice(-2);
  }

  var HTML_LANG = {zh: 'zh-CN', en: 'en'};

  function safeUrl(u) {
    try {
      var url = new URL(u, location.href);
      return (url.protocol === 'http:' || url.protocol === 'https:') ? url : null;
    } catch (e) {
      return null;
    }
  }

  // Only one player at a time, wherever it is on the page.
  document.addEventListener('play', function (e) {
    Array.prototype.forEach.call(document.querySelectorAll('audio'), function (a) {
      if (a !== e.target) a.pause();
    });
  }, true);

  var vm = window.voicemap = {formatDistance: formatDistance, geo: window.vmGeo, h: h};

  vm.start = function (refs, cfg) {
    var map = refs.map, cluster = refs.cluster, subs = refs.layers, control = refs.control;
    var t = cfg.t, lang = cfg.lang, other = lang === 'zh' ? 'en' : 'zh';
    var cats = cfg.categories, catById = {};
    cats.forEach(function (c) { catById[c.id] = c; });
    var shift = cfg.datum === 'gcj02';
    var state = vm.state = {map: map, cluster: cluster, layers: subs, mode: 'points',
      voiced: false, venue: null, loading: 0, loads: 0, known: {}, knownCount: 0};
    var gridLayer = L.layerGroup();
    var narrow = window.matchMedia('(max-width: 719px)');

    function toDisplay(lon, lat) {
      if (shift) {
        var g = vm.geo.wgs84ToGcj02(lon, lat);
        return L.latLng(g[1], g[0]);
      }
      return L.latLng(lat, lon);
    }
    function toWgs(ll) {
      return shift ? vm.geo.gcj02ToWgs84(ll.lng, ll.lat) : [ll.lng, ll.lat];
    }
    vm.toDisplay = toDisplay;
    vm.toWgs = toWgs;

    // --- controls: localised zoom, layer control with a title, legend --------------------
    L.control.zoom({position: 'topleft', zoomInTitle: t.zoom_in, zoomOutTitle: t.zoom_out})
      .addTo(map);
    map.attributionControl.setPrefix(false);
    if (!narrow.matches) {
      control.remove();
      control.options.collapsed = false;
      control.addTo(map);
    }
    var cEl = control.getContainer();
    cEl.setAttribute('aria-label', t.layers);
    var toggle = cEl.querySelector('.leaflet-control-layers-toggle');
    if (toggle) {
      toggle.title = t.layers;
      toggle.setAttribute('aria-label', t.layers);
    }
    var list = cEl.querySelector('.leaflet-control-layers-list');
    if (list) list.insertBefore(h('p', {class: 'vm-layers-title', text: t.layers}), list.firstChild);

    var legendEl = document.getElementById('vm-legend');
    var Legend = L.Control.extend({
      options: {position: 'topright'},
      onAdd: function () {
        L.DomEvent.disableClickPropagation(legendEl);
        L.DomEvent.disableScrollPropagation(legendEl);
        legendEl.hidden = false;
        return legendEl;
      }
    });
    new Legend().addTo(map);
    if (!narrow.matches) legendEl.querySelector('details').open = true;

    var hint = document.getElementById('vm-hint');
    var toastEl = document.getElementById('vm-toast');
    function toast(text) {
      toastEl.textContent = text;
      toastEl.hidden = false;
      clearTimeout(toast.timer);
      toast.timer = setTimeout(function () { toastEl.hidden = true; }, 5000);
    }

    // --- markers ---------------------------------------------------------------------------
    var VenueIcon = L.DivIcon.extend({
      options: {iconSize: [44, 44], iconAnchor: [22, 22], popupAnchor: [0, -14],
        className: 'vm-marker'},
      createIcon: function (old) {
        var div = L.DivIcon.prototype.createIcon.call(this, old);
        var o = this.options;
        div.className += ' vm-c-' + o.cat + (o.voiced ? ' vm-voiced' : '');
        div.setAttribute('data-cat', o.cat);
        div.appendChild(h('span', {class: 'vm-pin', 'aria-hidden': 'true', text: o.glyph}));
        if (o.voiced) div.appendChild(h('span', {class: 'vm-badge'}, [icon('speaker', 12)]));
        return div;
      }
    });
    var icons = {};
    cats.forEach(function (c) {
      icons[c.id] = [new VenueIcon({cat: c.id, glyph: c.icon, voiced: false}),
        new VenueIcon({cat: c.id, glyph: c.icon, voiced: true})];
    });

    var LabelledIcon = L.DivIcon.extend({
      createIcon: function (old) {
        var div = L.DivIcon.prototype.createIcon.call(this, old);
        div.setAttribute('aria-label', this.options.label);
        div.title = this.options.label;
        div.appendChild(this.options.body());
        return div;
      }
    });

    function bubble(n, voiced) {
      var size = n < 10 ? 44 : n < 100 ? 50 : n < 1000 ? 56 : 64;
      var label = fmt(t.cluster_label, {n: n.toLocaleString(lang)});
      if (voiced) label += ' · ' + fmt(t.voiced_count, {n: voiced.toLocaleString(lang)});
      return new LabelledIcon({iconSize: [size, size], className: 'vm-cluster', label: label,
        body: function () {
          return h('span', {class: 'vm-cluster-inner' + (voiced ? ' vm-voiced' : ''),
            'aria-hidden': 'true'}, [h('span', {text: n.toLocaleString(lang)}),
            voiced ? h('span', {class: 'vm-badge'}, [icon('speaker', 12)]) : null]);
        }});
    }

    vm.clusterIcon = function (c) {
      var voiced = 0;
      c.getAllChildMarkers().forEach(function (m) { if (m.vm && m.vm.clips) voiced++; });
      return bubble(c.getChildCount(), voiced);
    };

    function makeMarker(row) {
      var cat = cats[row[3]] || cats[0], clips = row[4];
      var label = row[5] + ', ' + cat.label + (clips ? ', ' + t.has_voice : '');
      var m = L.marker(toDisplay(row[1], row[2]), {icon: icons[cat.id][clips ? 1 : 0],
        title: label, keyboard: true, riseOnHover: true});
      m.vm = {id: row[0], cat: cat.id, clips: clips, name: row[5], minAge: row[6],
        maxAge: row[7], hours: row[8]};
      m.on('click', function () { openVenue(row[0], m.getLatLng()); });
      return m;
    }

    function passes(m) { return (!state.voiced || m.vm.clips > 0) && familyPasses(m.vm); }

    // Sub-groups add their markers to the cluster one by one; these do it in one batch.
    function addBatch(sub, markers) {
      if (!markers.length) return;
      markers.forEach(function (m) { sub._layers[L.stamp(m)] = m; });
      if (map.hasLayer(sub)) cluster.addLayers(markers);
    }
    function removeBatch(sub, markers) {
      if (!markers.length) return;
      markers.forEach(function (m) { delete sub._layers[L.stamp(m)]; });
      if (map.hasLayer(sub)) cluster.removeLayers(markers);
    }

    function byCategory(filter) {
      var out = {};
      Object.keys(state.known).forEach(function (id) {
        var m = state.known[id];
        if (filter(m)) (out[m.vm.cat] = out[m.vm.cat] || []).push(m);
      });
      return out;
    }

    function clearPoints() {
      cluster.clearLayers();
      Object.keys(subs).forEach(function (k) { subs[k]._layers = {}; });
      state.known = {};
      state.knownCount = 0;
    }

    function showPoints(rows) {
      if (state.mode !== 'points') {
        gridLayer.clearLayers();
        map.removeLayer(gridLayer);
        map.addLayer(cluster);
        state.mode = 'points';
      }
      if (state.knownCount > 20000) clearPoints();  // bound memory on long sessions
      var fresh = {};
      rows.forEach(function (row) {
        if (state.known[row[0]]) return;
        var m = makeMarker(row);
        state.known[row[0]] = m;
        state.knownCount++;
        if (passes(m)) (fresh[m.vm.cat] = fresh[m.vm.cat] || []).push(m);
      });
      Object.keys(fresh).forEach(function (cid) { addBatch(subs[cid], fresh[cid]); });
      hint.hidden = true;
    }

    function showGrid(cells) {
      if (state.mode !== 'grid') {
        clearPoints();
        map.removeLayer(cluster);
        gridLayer.addTo(map);
        state.mode = 'grid';
      }
      gridLayer.clearLayers();
      cells.forEach(function (c) {
        var ll = toDisplay(c[0], c[1]);
        var m = L.marker(ll, {icon: bubble(c[2], c[3]), keyboard: true});
        m.on('click', function () {
          map.setView(ll, Math.min(map.getZoom() + 2, cfg.maxZoom));
        });
        gridLayer.addLayer(m);
      });
      hint.hidden = cells.length === 0;
    }

    function activeCats() {
      return cats.filter(function (c) { return map.hasLayer(subs[c.id]); })
        .map(function (c) { return c.id; });
    }

    // --- loading the venues in view ---------------------------------------------------------
    var seq = 0, controller = null;
    function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

    function load() {
      var mine = ++seq;
      if (controller) controller.abort();
      controller = window.AbortController ? new AbortController() : null;
      var active = activeCats();
      if (!active.length) {
        gridLayer.clearLayers();
        hint.hidden = true;
        return done();
      }
      var b = map.getBounds().pad(0.15);
      var sw = toWgs(b.getSouthWest()), ne = toWgs(b.getNorthEast());
      var q = new URLSearchParams({
        bbox: [clamp(sw[0], -180, 180), clamp(sw[1], -90, 90), clamp(ne[0], -180, 180),
          clamp(ne[1], -90, 90)].map(function (v) { return v.toFixed(5); }).join(','),
        zoom: String(Math.round(map.getZoom())), lang: lang});
      if (active.length < cats.length) q.set('category', active.join(','));
      if (state.voiced) q.set('voiced', '1');
      state.loading++;
      fetch(cfg.urls.data + '?' + q.toString(), {signal: controller ? controller.signal : undefined})
        .then(function (r) {
          if (!r.ok) throw new Error('HTTP ' + r.status);
          return r.json();
        })
        .then(function (d) {
          state.loading--;
          if (mine !== seq) return;
          if (d.mode === 'grid') showGrid(d.cells);
          else showPoints(d.v);
          done();
        })
        .catch(function (err) {
          state.loading--;
          if (err && err.name === 'AbortError') return;
          toast(t.load_failed);
          done();
        });
    }
    function done() {
      renderList();
      if (!state.loads && window.performance) vm.readyAt = performance.now();
      state.loads++;
      document.documentElement.setAttribute('data-vm-ready', '1');
      document.documentElement.setAttribute('data-vm-loads', String(state.loads));
    }
    var loadTimer = null;
    function loadSoon() {
      clearTimeout(loadTimer);
      loadTimer = setTimeout(load, 120);
    }

    // --- venue popups ------------------------------------------------------------------------
    // On phones the popup spans the width, so it must clear the controls stacked at the top.
    // Leaflet's width is the content's: keep content + margins (34) + side gaps (24) on screen.
    var popupWidth = Math.max(200, Math.min(320, window.innerWidth - 58));
    var popup = L.popup({maxWidth: popupWidth, minWidth: Math.min(240, popupWidth),
      className: 'vm-leaflet-popup',
      maxHeight: Math.max(240, Math.round(window.innerHeight * 0.58)),
      autoPanPaddingTopLeft: [12, narrow.matches ? 124 : 20],
      autoPanPaddingBottomRight: [12, narrow.matches ? 84 : 20]});
    var features = {}, clipLists = {};

    function getJson(url) {
      return fetch(url).then(function (r) {
        if (r.status === 404) return null;
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      });
    }
    function getFeature(id) {
      if (!features[id]) features[id] = getJson(cfg.urls.venue + encodeURIComponent(id));
      return features[id];
    }
    function getClips(id) {
      if (!clipLists[id]) {
        clipLists[id] = getJson(cfg.urls.venue + encodeURIComponent(id) + '/clips')
          .then(function (d) { return (d && d.clips) || []; })
          .catch(function () { delete clipLists[id]; return []; });
      }
      return clipLists[id];
    }
    vm.getClips = getClips;

    function named(p, l) {
      return h('span', {class: 'vm-data', lang: HTML_LANG[l], text: p['name_' + l] || ''});
    }
    function inLang(p, field) {
      // The page language's text, else the other's, with its language marked.
      var l = p[field + '_' + lang] ? lang : (p[field + '_' + other] ? other : null);
      return l ? h('span', {class: 'vm-data', lang: HTML_LANG[l], text: p[field + '_' + l]}) : null;
    }
    function ages(p) {
      var lo = p.min_age, hi = p.max_age;
      if (lo !== null && lo !== undefined && hi !== null && hi !== undefined) {
        return fmt(t.ages_range, {min: lo, max: hi});
      }
      if (lo !== null && lo !== undefined) return fmt(t.ages_min, {min: lo});
      if (hi !== null && hi !== undefined) return fmt(t.ages_max, {max: hi});
      return null;
    }
    function access(p) {
      var items = [['step_free', 'step_free', 'not_step_free'],
        ['stroller_friendly', 'stroller', 'not_stroller'],
        ['baby_care_room', 'baby_room', 'no_baby_room']];
      var lis = [];
      items.forEach(function (it) {
        var v = p[it[0]];
        if (v === true) lis.push(h('li', {class: 'vm-yes', text: t[it[1]]}));
        else if (v === false) lis.push(h('li', {class: 'vm-no', text: t[it[2]]}));
      });
      return lis.length ? h('ul', {class: 'vm-access'}, lis) : null;
    }
    function clipLangLabel(code) {
      var base = String(code || '').toLowerCase().split('-')[0];
      return t['clip_lang_' + base] || t.clip_lang_other;
    }

    /** A player for one clip: label, <audio preload=none>, transcript one tap away. */
    function clipFigure(c) {
      var caption = h('figcaption', {class: 'vm-clip-caption'}, [
        h('span', {class: 'vm-clip-lang', text: clipLangLabel(c.lang)}), ' · ']
        .concat(c.synthetic ? [t.synthetic_voice]
          : fmtNodes(t.narrator, {name: c.narrator_name, age: c.narrator_age}, ['name']))
        .concat(c.duration_ms ? [' · ' + formatDuration(c.duration_ms)] : []));
      var audio = h('audio', {controls: true, preload: 'none', src: c.audio_url,
        lang: HTML_LANG[c.lang] || c.lang});
      return h('figure', {class: 'vm-clip', 'data-clip': c.id}, [
        c.title ? h('p', {class: 'vm-clip-title vm-data', text: c.title}) : null,
        caption, audio,
        h('details', {class: 'vm-transcript'}, [h('summary', {text: t.transcript}),
          h('p', {class: 'vm-data', text: c.transcript || ''})])
      ]);
    }

    function hours(p) {
      // Chinese hours (opening_hours_zh) on Chinese pages, English (opening_hours) on
      // English ones, else whichever the venue has, its language marked.
      var zh = p.opening_hours_zh, en = p.opening_hours;
      var l = lang === 'zh' ? (zh ? 'zh' : (en ? 'en' : null)) : (en ? 'en' : (zh ? 'zh' : null));
      return l ? h('span', {class: 'vm-data', lang: HTML_LANG[l], text: l === 'zh' ? zh : en})
        : null;
    }

    var popupSeq = 0;
    function venueBody(f, clips) {
      var p = f.properties, cat = catById[p.category] || cats[0];
      var id = 'vm-pop-' + (++popupSeq);
      var facts = h('dl', {class: 'vm-facts'});
      function fact(label, value) {
        if (value) facts.appendChild(h('div', {}, [h('dt', {text: label}),
          h('dd', {}, [value])]));
      }
      fact(t.address, inLang(p, 'address'));
      fact(t.hours, withOpenState(p, hours(p)));
      var a = ages(p);
      fact(t.ages, a ? document.createTextNode(a) : null);
      fact(t.access, access(p));
      var site = p.website ? safeUrl(p.website) : null;
      fact(t.website, site ? h('a', {class: 'vm-data', href: site.href, target: '_blank',
        rel: 'noopener noreferrer nofollow', text: site.hostname}) : null);
      var about = inLang(p, 'description');
      var guides = h('section', {class: 'vm-clips'}, [h('h3', {text: t.voice_guides})]);
      if (clips.length) clips.forEach(function (c) { guides.appendChild(clipFigure(c)); });
      else guides.appendChild(h('p', {class: 'vm-muted', text: t.no_guides}));
      return h('article', {class: 'vm-popup', 'aria-labelledby': id, 'data-venue': p.id}, [
        h('h2', {class: 'vm-name', id: id, tabindex: '-1'}, [named(p, lang)]),
        h('p', {class: 'vm-name-alt'}, [named(p, other)]),
        h('p', {class: 'vm-cat'}, [h('span', {class: 'vm-swatch vm-c-' + cat.id,
          'aria-hidden': 'true', text: cat.icon}), cat.label]),
        guides,
        facts,
        about ? h('p', {class: 'vm-about'}, [about]) : null,
        h('p', {class: 'vm-more'}, [h('a', {href: cfg.urls.page + encodeURIComponent(p.id) +
          '?lang=' + lang, text: t.open_page})])
      ]);
    }

    function openVenue(id, latlng, feature) {
      var box = h('div', {class: 'vm-popup-box'}, [h('p', {class: 'vm-muted', text: t.loading})]);
      fitPopup();
      popup.setLatLng(latlng).setContent(box).openOn(map);
      state.venue = id;
      saveUrlSoon();
      Promise.all([feature ? Promise.resolve(feature) : getFeature(id), getClips(id)])
        .then(function (r) {
          if (state.venue !== id) return;
          box.textContent = '';
          if (!r[0]) {
            box.appendChild(h('p', {class: 'vm-muted', text: t.load_failed}));
            return;
          }
          box.appendChild(venueBody(r[0], r[1]));
          // Leaflet skips the auto-pan that follows one of its own (the "loading" popup's),
          // which would leave the grown popup under the controls.
          popup._autopanning = false;
          fitPopup();
          popup.update();
          var heading = box.querySelector('.vm-name');
          if (heading) heading.focus({preventScroll: true});
        })
        .catch(function () {
          box.textContent = '';
          box.appendChild(h('p', {class: 'vm-muted', text: t.load_failed}));
        });
    }
    vm.openVenue = openVenue;

    map.on('popupopen', function (e) {
      var b = e.popup.getElement().querySelector('.leaflet-popup-close-button');
      if (b) {
        b.setAttribute('aria-label', t.close);
        b.title = t.close;
      }
    });
    map.on('popupclose', function (e) {
      var el = e.popup.getElement();
      if (el) Array.prototype.forEach.call(el.querySelectorAll('audio'), function (a) { a.pause(); });
      if (e.popup === popup) {
        state.venue = null;
        saveUrlSoon();
      }
    });

    // --- near me -------------------------------------------------------------------------------
    var sheet = document.getElementById('vm-near');
    var sheetTitle = document.getElementById('vm-near-title');
    var sheetStatus = document.getElementById('vm-near-status');
    var sheetList = document.getElementById('vm-near-list');
    var sheetToggle = document.getElementById('vm-near-toggle');
    var mapEl = map.getContainer();
    var you = null, tapping = false, lastNear = null;

    function openSheet() {
      sheet.hidden = false;
      sheet.classList.remove('vm-collapsed');
      sheetToggle.setAttribute('aria-expanded', 'true');
      document.body.classList.add('vm-sheet-open');
    }
    function closeSheet() {
      sheet.hidden = true;
      stopTapping();
      document.body.classList.remove('vm-sheet-open');
      document.getElementById('vm-near-btn').focus();
    }
    function setStatus(text) { sheetStatus.textContent = text || ''; }
    function stopTapping() {
      if (tapping) map.off('click', onTap);
      tapping = false;
      mapEl.classList.remove('vm-tapping');
    }
    function askTap(message) {
      stopTapping();
      openSheet();
      sheetList.textContent = '';
      setStatus(message);
      tapping = true;
      mapEl.classList.add('vm-tapping');
      map.once('click', onTap);
    }
    function onTap(e) {
      tapping = false;
      mapEl.classList.remove('vm-tapping');
      var w = toWgs(e.latlng);
      nearFrom(w[0], w[1], true);
    }

    function showYou(lon, lat) {
      var ll = toDisplay(lon, lat);
      vm.position = [lon, lat];  // WGS-84; whatson.js sorts by distance from it
      if (!you) {
        you = L.circleMarker(ll, {radius: 9, color: '#ffffff', weight: 3, fillColor: '#1a56db',
          fillOpacity: 1, interactive: false, className: 'vm-you'}).addTo(map);
      } else {
        you.setLatLng(ll);
      }
      return ll;
    }

    function locate() {
      stopTapping();
      openSheet();
      sheetList.textContent = '';
      setStatus(t.locating);
      if (!navigator.geolocation) return askTap(t.location_failed);
      navigator.geolocation.getCurrentPosition(function (pos) {
        // The Geolocation API reports WGS-84.
        nearFrom(pos.coords.longitude, pos.coords.latitude, false);
      }, function () {
        askTap(t.location_failed);
      }, {enableHighAccuracy: true, timeout: 12000, maximumAge: 60000});
    }

    /** Centre on `ll`, above the sheet where the sheet covers the bottom of the map. */
    function centreAbove(ll, zoom) {
      var cover = narrow.matches && !sheet.hidden ? sheet.offsetHeight : 0;
      var p = map.project(ll, zoom).add([0, cover / 2]);
      map.setView(map.unproject(p, zoom), zoom);
    }

    function nearFrom(lon, lat, tapped) {
      var ll = showYou(lon, lat), zoom = Math.max(map.getZoom(), 14);
      sheetTitle.textContent = tapped ? t.nearest_from_tap : t.nearest_title;
      setStatus(t.loading);
      var active = activeCats();
      lastNear = [lon, lat, tapped];
      var q = new URLSearchParams({lat: lat.toFixed(6), lon: lon.toFixed(6),
        k: state.voiced || state.open || state.age !== null ? '100' : '10'});
      if (active.length && active.length < cats.length) q.set('category', active.join(','));
      fetch(cfg.urls.nearest + '?' + q.toString())
        .then(function (r) {
          if (!r.ok) throw new Error('HTTP ' + r.status);
          return r.json();
        })
        .then(function (fc) {
          var found = fc.features.filter(function (f) {
            return (!state.voiced || f.properties.clip_count > 0) && familyPasses(
              {minAge: f.properties.min_age, maxAge: f.properties.max_age,
                hours: f.properties.opening_hours});
          }).slice(0, 10);
          if (!offerVoiced(lon, lat, found, q)) renderNear(found);
          centreAbove(ll, zoom);
        })
        .catch(function () {
          setStatus(t.load_failed);
          centreAbove(ll, zoom);
        });
    }

    function renderNear(found) {
      sheetList.textContent = '';
      setStatus(found.length ? '' : t.no_results);
      found.forEach(function (f, i) { sheetList.appendChild(nearItem(f, i)); });
    }

    /** One venue of the near-me list: its name, distance and category, and a play button. */
    function nearItem(f, i) {
        var p = f.properties, cat = catById[p.category] || cats[0];
        var nameId = 'vm-near-name-' + i;
        var li = h('li', {class: 'vm-near-item', 'data-id': p.id});
        li.appendChild(h('button', {type: 'button', class: 'vm-near-main',
          onclick: function () { choose(f); }}, [
          h('span', {class: 'vm-swatch vm-c-' + cat.id, 'aria-hidden': 'true', text: cat.icon}),
          h('span', {class: 'vm-near-text'}, [
            h('span', {class: 'vm-near-name vm-data', id: nameId, lang: HTML_LANG[lang],
              text: p['name_' + lang] || p.name_zh}),
            h('span', {class: 'vm-near-meta'}, [
              h('span', {class: 'vm-near-dist', text: formatDistance(p.distance_m, t)}),
              ' · ' + cat.label])
          ])
        ]));
        if (p.clip_count > 0) li.appendChild(playButton(p.id, nameId, li));
        return li;
    }

    function playButton(id, nameId, li) {
      var btn = h('button', {type: 'button', class: 'vm-play', 'aria-label': t.play,
        'aria-describedby': nameId, 'aria-pressed': 'false', disabled: true}, [icon('play', 22)]);
      var audio = null;
      function paint(playing) {
        btn.textContent = '';
        btn.appendChild(icon(playing ? 'pause' : 'play', 22));
        btn.setAttribute('aria-label', playing ? t.pause : t.play);
        btn.setAttribute('aria-pressed', playing ? 'true' : 'false');
      }
      getClips(id).then(function (clips) {
        if (!clips.length) {
          btn.hidden = true;
          return;
        }
        var c = clips.filter(function (x) { return String(x.lang).indexOf(lang) === 0; })[0] ||
          clips[0];
        audio = h('audio', {preload: 'none', src: c.audio_url, class: 'vm-hidden-audio'});
        audio.addEventListener('play', function () { paint(true); });
        audio.addEventListener('pause', function () { paint(false); });
        audio.addEventListener('ended', function () { paint(false); });
        li.appendChild(audio);
        btn.disabled = false;
      });
      // play() only ever runs inside this tap's handler.
      btn.addEventListener('click', function () {
        if (!audio) return;
        if (audio.paused) {
          var p = audio.play();
          if (p && p.catch) p.catch(function () { paint(false); });
        } else {
          audio.pause();
        }
      });
      return btn;
    }

    function choose(f) {
      var c = f.geometry.coordinates, ll = toDisplay(c[0], c[1]);
      map.setView(ll, Math.max(map.getZoom(), 16), {animate: false});
      if (narrow.matches) {
        sheet.classList.add('vm-collapsed');
        sheetToggle.setAttribute('aria-expanded', 'false');
      }
      openVenue(f.properties.id, ll, f);
    }

    document.getElementById('vm-near-btn').addEventListener('click', locate);
    document.getElementById('vm-pick').addEventListener('click', function () {
      askTap(t.tap_prompt);
    });
    document.getElementById('vm-near-close').addEventListener('click', closeSheet);
    sheetToggle.addEventListener('click', function () {
      var collapsed = sheet.classList.toggle('vm-collapsed');
      sheetToggle.setAttribute('aria-expanded', collapsed ? 'false' : 'true');
    });
    sheet.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') closeSheet();
    });
    L.DomEvent.disableClickPropagation(sheet);
    L.DomEvent.disableScrollPropagation(sheet);

    // --- only venues with a voice guide ---------------------------------------------------
    var voicedBtn = document.getElementById('vm-voiced-btn');
    function setVoiced(on) {
      if (on === state.voiced) return;
      state.voiced = on;
      voicedBtn.setAttribute('aria-pressed', on ? 'true' : 'false');
      refilter();
    }
    voicedBtn.addEventListener('click', function () {
      setVoiced(!state.voiced);
      saveUrlSoon();
      load();
    });

    // --- fitting popups: clear of the controls on every phone ------------------------------
    /** Set the popup's auto-pan padding and height from where the controls are now. */
    function fitPopup() {
      var box = mapEl.getBoundingClientRect(), w = box.width, hgt = box.height;
      var top = 12, bottom = 12, left = 12;
      function each(sel, fn) {
        Array.prototype.forEach.call(document.querySelectorAll(sel), function (e) {
          var r = e.getBoundingClientRect();
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
      var o = popup.options;
      // Content + margins (34) + the side gaps stay on screen.
      o.maxWidth = Math.max(180, Math.min(320, w - left - 12 - 34));
      o.minWidth = Math.min(240, o.maxWidth);
      o.autoPanPaddingTopLeft = L.point(left, top);
      o.autoPanPaddingBottomRight = L.point(12, bottom);
      // The room between them, less the content's margins (28), the tip (20) and the
      // marker's half height (14); a taller popup scrolls inside itself.
      var room = hgt - top - bottom - 62;
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

    /** Where the open sheet's top is, so the actions sit above it and stay usable. */
    function placeActions() {
      var lift = 0;
      Array.prototype.forEach.call(document.querySelectorAll('.vm-sheet'), function (e) {
        var r = e.getBoundingClientRect();
        if (r.height && (narrow.matches || r.left < 400)) {
          lift = Math.max(lift, window.innerHeight - r.top);
        }
      });
      document.body.style.setProperty('--vm-sheet-lift', lift ? lift + 'px' : '0px');
      document.body.classList.toggle('vm-sheet-shown', lift > 0);
    }
    if (window.ResizeObserver) {
      var sheetWatch = new ResizeObserver(placeActions);
      Array.prototype.forEach.call(document.querySelectorAll('.vm-sheet'), function (e) {
        sheetWatch.observe(e);
      });
    }
    if (window.MutationObserver) {
      var sheetShown = new MutationObserver(placeActions);
      Array.prototype.forEach.call(document.querySelectorAll('.vm-sheet'), function (e) {
        sheetShown.observe(e, {attributes: true, attributeFilter: ['hidden', 'class']});
      });
    }

    // --- family filters: open now, the child's age (and voice guides only) ----------------
    state.open = false;
    state.age = null;
    var CHINA_MS = 8 * 3600 * 1000;  // Asia/Shanghai: UTC+8 all year (no summer time)
    var DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
    var MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov',
      'dec'];

    /** "Tue-Sun" -> [2..6,0]; "Daily" -> all; "Mon" -> [1]; null if not understood. */
    function dayList(spec) {
      spec = spec.toLowerCase();
      if (spec === 'daily') return [0, 1, 2, 3, 4, 5, 6];
      var m = /^([a-z]{3})(?:-([a-z]{3}))?$/.exec(spec);
      if (!m || DAYS.indexOf(m[1]) < 0 || (m[2] && DAYS.indexOf(m[2]) < 0)) return null;
      var a = DAYS.indexOf(m[1]), b = m[2] ? DAYS.indexOf(m[2]) : a, out = [a];
      while (a !== b) {
        a = (a + 1) % 7;
        out.push(a);
      }
      return out;
    }
    function minutes(hm) {
      var m = /^(\d{1,2}):(\d{2})$/.exec(hm);
      return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
    }
    /** One season's rules ("Tue-Sun 08:30-17:00 (Nov-Mar to 16:30), closed Mon"), or null. */
    function parseRules(text) {
      var rules = [], ok = true;
      text.split(/,\s*(?![^()]*\))/).forEach(function (part) {
        part = part.trim();
        var m;
        if ((m = /^closed\s+(\S+)$/i.exec(part))) {
          var days = dayList(m[1]);
          if (!days) ok = false;
          else rules.push({days: days, closed: true});
        } else if ((m = /^(\S+)\s+(\d{1,2}:\d{2})-(\d{1,2}:\d{2})(?:\s+\(([a-z]{3})-([a-z]{3}) to (\d{1,2}:\d{2})\))?$/i.exec(part))) {
          var d = dayList(m[1]);
          if (!d) ok = false;
          else {
            var r = {days: d, from: minutes(m[2]), to: minutes(m[3])};
            if (m[4]) {
              var a = MONTHS.indexOf(m[4].toLowerCase()), b = MONTHS.indexOf(m[5].toLowerCase());
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
      var day = when.getUTCDay(), now = when.getUTCHours() * 60 + when.getUTCMinutes();
      var month = when.getUTCMonth(), open = false;
      rules.forEach(function (r) {
        if (r.closed || r.days.indexOf(day) < 0) return;
        var to = r.to;
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
    function openState(hoursText, date) {
      if (!hoursText) return 'unknown';
      var s = String(hoursText).trim();
      if (/^open 24 hours$/i.test(s)) return 'open';
      var when = new Date((date || new Date()).getTime() + CHINA_MS);
      var seasons = s.split(/\s*;\s*/), answers = [];
      for (var i = 0; i < seasons.length; i++) {
        var text = seasons[i];
        if (seasons.length > 1) {
          var m = /^(summer|winter)\s+(.*)$/i.exec(text);
          if (!m) return 'unknown';
          text = 'Daily ' + m[2];
        }
        var rules = parseRules(text);
        if (!rules) return 'unknown';
        answers.push(openBy(rules, when));
      }
      if (answers.some(function (a) { return a !== answers[0]; })) return 'unknown';
      return answers[0] ? 'open' : 'closed';
    }
    vm.openState = openState;

    /** Whether a venue ({minAge, maxAge, hours}) passes "open now" and the child's age. */
    function familyPasses(v) {
      // Unknown hours or ages are not guessed: such venues stay, marked "hours unknown".
      if (state.open && openState(v.hours) === 'closed') return false;
      if (state.age !== null) {
        if (v.minAge !== null && v.minAge !== undefined && state.age < v.minAge) return false;
        if (v.maxAge !== null && v.maxAge !== undefined && state.age > v.maxAge) return false;
      }
      return true;
    }

    /** Show the known markers that pass every filter, hide the others (in batches). */
    function refilter() {
      var add = {}, remove = {};
      Object.keys(state.known).forEach(function (id) {
        var m = state.known[id], sub = subs[m.vm.cat];
        var shown = !!sub._layers[L.stamp(m)], want = passes(m);
        if (shown !== want) {
          var into = want ? add : remove;
          (into[m.vm.cat] = into[m.vm.cat] || []).push(m);
        }
      });
      Object.keys(remove).forEach(function (cid) { removeBatch(subs[cid], remove[cid]); });
      Object.keys(add).forEach(function (cid) { addBatch(subs[cid], add[cid]); });
      syncFilters();
      renderList();
    }
    setInterval(function () { if (state.open) refilter(); }, 60000);

    function syncFilters() {
      Array.prototype.forEach.call(document.querySelectorAll('[data-vm-filter]'), function (e) {
        var f = e.getAttribute('data-vm-filter');
        if (f === 'age') e.value = state.age === null ? '' : String(state.age);
        else e.setAttribute('aria-pressed', state[f] ? 'true' : 'false');
      });
    }

    function filtersChanged() {
      refilter();
      saveUrlSoon();
      if (lastNear && !sheet.hidden && !tapping) nearFrom(lastNear[0], lastNear[1], lastNear[2]);
    }

    /** The filters as a row of chips, for the near-me and list sheets. */
    function filterBar() {
      var ages = h('select', {'data-vm-filter': 'age', onchange: function (e) {
        state.age = e.target.value === '' ? null : Number(e.target.value);
        filtersChanged();
      }}, [h('option', {value: '', text: t.map_age_any})]);
      for (var n = 0; n <= 17; n++) {
        ages.appendChild(h('option', {value: String(n), text: fmt(t.map_age_n, {n: n})}));
      }
      return h('div', {class: 'vm-map-filters', role: 'group', 'aria-label': t.map_filters}, [
        h('button', {type: 'button', class: 'vm-chip', 'data-vm-filter': 'voiced',
          'aria-pressed': 'false', onclick: function () {
            setVoiced(!state.voiced);
            load();
            filtersChanged();
          }}, [icon('speaker', 18), h('span', {text: t.voiced_only})]),
        h('button', {type: 'button', class: 'vm-chip', 'data-vm-filter': 'open',
          'aria-pressed': 'false', onclick: function () {
            state.open = !state.open;
            filtersChanged();
          }}, [h('span', {text: t.map_open_now})]),
        h('label', {class: 'vm-chip vm-filter-age'}, [h('span', {text: t.map_age}), ages])
      ]);
    }
    var nearBody = document.getElementById('vm-near-body');
    nearBody.insertBefore(filterBar(), nearBody.firstChild);

    /** The hours with "Open now" / "Closed now" / "Hours unknown" (Asia/Shanghai clock). */
    function withOpenState(p, shown) {
      var state = openState(p.opening_hours);
      var badge = h('span', {class: 'vm-open vm-open-' + state, text: t[OPEN_TEXT[state]]});
      if (!shown) return badge;
      return h('span', {}, [shown, ' · ', badge]);
    }

    // --- near me found no voice guide: say so, offer the nearest that have one ------------
    /** Returns false when there is nothing to offer (the plain list is shown instead). */
    function offerVoiced(lon, lat, found, q) {
      if (state.voiced || !found.length) return false;
      if (found.some(function (f) { return f.properties.clip_count > 0; })) return false;
      var want = lastNear;
      var more = new URLSearchParams(q);
      more.set('k', '100');
      fetch(cfg.urls.nearest + '?' + more.toString())
        .then(function (r) {
          if (!r.ok) throw new Error('HTTP ' + r.status);
          return r.json();
        })
        .then(function (fc) {
          if (want !== lastNear) return;
          var voiced = fc.features.filter(function (f) {
            return f.properties.clip_count > 0 && familyPasses({minAge: f.properties.min_age,
              maxAge: f.properties.max_age, hours: f.properties.opening_hours});
          }).slice(0, 3);
          sheetList.textContent = '';
          setStatus(voiced.length ? t.map_no_guides_near : t.map_no_guides_anywhere);
          voiced.forEach(function (f, i) {
            var li = nearItem(f, 'v' + i);
            li.classList.add('vm-near-voiced');
            sheetList.appendChild(li);
          });
          sheetList.appendChild(h('li', {class: 'vm-near-sep', text: t.map_nearby_without}));
          found.forEach(function (f, i) { sheetList.appendChild(nearItem(f, i)); });
        })
        .catch(function () { if (want === lastNear) renderNear(found); });
      return true;
    }

    // --- a list of what is on screen, nearest first when the position is known ------------
    var listSheet = document.getElementById('vm-list');
    var listItems = document.getElementById('vm-list-items');
    var listStatus = document.getElementById('vm-list-status');
    var listToggle = document.getElementById('vm-list-toggle');
    var listBody = document.getElementById('vm-list-body');
    listBody.insertBefore(filterBar(), listBody.firstChild);
    var LIST_MAX = 100;

    function metres(a, b) {  // haversine on WGS-84 [lon, lat] pairs: enough to sort a list
      var r = Math.PI / 180, dLat = (b[1] - a[1]) * r, dLon = (b[0] - a[0]) * r;
      var x = Math.sin(dLat / 2) * Math.sin(dLat / 2) + Math.cos(a[1] * r) *
        Math.cos(b[1] * r) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
      return 6371008.8 * 2 * Math.atan2(Math.sqrt(x), Math.sqrt(1 - x));
    }

    var OPEN_TEXT = {open: 'map_open_now', closed: 'map_closed_now', unknown: 'map_hours_unknown'};
    function renderList() {
      if (!listSheet || listSheet.hidden) return;
      var bounds = map.getBounds(), here = vm.position;
      var rows = [];
      Object.keys(state.known).forEach(function (id) {
        var m = state.known[id];
        if (!passes(m) || !map.hasLayer(subs[m.vm.cat]) || !bounds.contains(m.getLatLng())) return;
        rows.push({m: m, d: here ? metres(here, toWgs(m.getLatLng())) : null});
      });
      rows.sort(here ? function (a, b) { return a.d - b.d; }
        : function (a, b) { return String(a.m.vm.name).localeCompare(String(b.m.vm.name), lang); });
      listItems.textContent = '';
      listStatus.textContent = rows.length
        ? fmt(here ? t.map_list_count_near : t.map_list_count, {n: rows.length})
          + (rows.length > LIST_MAX ? ' ' + fmt(t.map_list_more, {n: LIST_MAX}) : '')
        : t.map_list_empty;
      rows.slice(0, LIST_MAX).forEach(function (row, i) {
        var v = row.m.vm, cat = catById[v.cat] || cats[0], ll = row.m.getLatLng();
        var open = openState(v.hours);
        var meta = [];
        if (row.d !== null) meta.push(h('span', {class: 'vm-near-dist', text: formatDistance(row.d, t)}), ' · ');
        meta.push(cat.label, ' · ', h('span', {class: 'vm-open vm-open-' + open, text: t[OPEN_TEXT[open]]}));
        if (v.clips) meta.push(' · ', t.has_voice);
        listItems.appendChild(h('li', {class: 'vm-near-item', 'data-id': v.id}, [
          h('button', {type: 'button', class: 'vm-near-main', onclick: function () {
            map.setView(ll, Math.max(map.getZoom(), 16), {animate: false});
            if (narrow.matches) {
              listSheet.classList.add('vm-collapsed');
              listToggle.setAttribute('aria-expanded', 'false');
            }
            openVenue(v.id, ll);
          }}, [
            h('span', {class: 'vm-swatch vm-c-' + cat.id, 'aria-hidden': 'true', text: cat.icon}),
            h('span', {class: 'vm-near-text'}, [
              h('span', {class: 'vm-near-name vm-data', id: 'vm-list-name-' + i,
                lang: HTML_LANG[lang], text: v.name || v.id}),
              h('span', {class: 'vm-near-meta'}, meta)])
          ])]));
      });
    }
    vm.renderList = renderList;

    function openList() {
      if (!sheet.hidden) closeSheet();
      var wo = document.getElementById('vm-whatson');
      if (wo && !wo.hidden) document.getElementById('vm-whatson-close').click();
      listSheet.hidden = false;
      listSheet.classList.remove('vm-collapsed');
      listToggle.setAttribute('aria-expanded', 'true');
      document.getElementById('vm-list-btn').setAttribute('aria-expanded', 'true');
      state.list = true;
      renderList();
      saveUrlSoon();
    }
    function closeList(focus) {
      if (listSheet.hidden) return;
      listSheet.hidden = true;
      state.list = false;
      document.getElementById('vm-list-btn').setAttribute('aria-expanded', 'false');
      if (focus) document.getElementById('vm-list-btn').focus();
      saveUrlSoon();
    }
    document.getElementById('vm-list-btn').addEventListener('click', function () {
      if (listSheet.hidden) {
        openList();
        listToggle.focus();
      } else {
        closeList(false);
      }
    });
    document.getElementById('vm-list-close').addEventListener('click', function () {
      closeList(true);
    });
    listToggle.addEventListener('click', function () {
      var collapsed = listSheet.classList.toggle('vm-collapsed');
      listToggle.setAttribute('aria-expanded', collapsed ? 'false' : 'true');
    });
    listSheet.addEventListener('keydown', function (e) { if (e.key === 'Escape') closeList(true); });
    ['vm-near-btn', 'vm-whatson-btn'].forEach(function (bid) {
      document.getElementById(bid).addEventListener('click', function () { closeList(false); });
    });
    L.DomEvent.disableClickPropagation(listSheet);
    L.DomEvent.disableScrollPropagation(listSheet);
    map.on('moveend overlayadd overlayremove', function () { renderList(); });

    // The venue page's "back to the map" returns here: the URL must be current before it goes.
    document.addEventListener('click', function (e) {
      if (e.target.closest && e.target.closest('.vm-more a')) saveUrl();
    }, true);

    /** The family filters and the open list in the URL (see stateParams). */
    function familyParams(q) {
      if (state.open) q.set('open', '1');
      if (state.age !== null) q.set('age', String(state.age));
      if (state.list) q.set('list', '1');
    }
    function restoreFamily(q) {
      state.open = q.get('open') === '1';
      var age = parseInt(q.get('age'), 10);
      state.age = isFinite(age) && age >= 0 && age <= 17 ? age : null;
      syncFilters();
      if (q.get('list') === '1') setTimeout(openList, 0);  // once the view is set
    }

    // --- the URL keeps the state -----------------------------------------------------------
    var langLink = document.getElementById('vm-lang');
    function stateParams(forLang) {
      var c = toWgs(map.getCenter());
      var q = new URLSearchParams();
      q.set('lang', forLang);
      q.set('lat', c[1].toFixed(5));
      q.set('lon', c[0].toFixed(5));
      q.set('z', String(Math.round(map.getZoom())));
      var active = activeCats();
      if (active.length < cats.length) q.set('category', active.join(','));
      if (state.voiced) q.set('voiced', '1');
      if (state.venue) q.set('venue', state.venue);
      familyParams(q);
      return q;
    }
    function saveUrl() {
      history.replaceState(null, '', '?' + stateParams(lang).toString());
      langLink.href = '?' + stateParams(other).toString();
    }
    var urlTimer = null;
    function saveUrlSoon() {
      clearTimeout(urlTimer);
      urlTimer = setTimeout(saveUrl, 200);
    }

    var q = new URLSearchParams(location.search);
    if (q.has('category')) {
      var wanted = q.get('category').split(',');
      cats.forEach(function (c) {
        if (wanted.indexOf(c.id) < 0) map.removeLayer(subs[c.id]);
      });
    }
    restoreFamily(q);
    if (q.get('voiced') === '1') setVoiced(true);
    var lat = parseFloat(q.get('lat')), lon = parseFloat(q.get('lon')), z = parseInt(q.get('z'), 10);
    var hasView = isFinite(lat) && isFinite(lon);
    map.setView(hasView ? toDisplay(lon, lat) : toDisplay(cfg.centre[0], cfg.centre[1]),
      isFinite(z) ? clamp(z, 8, cfg.maxZoom) : (narrow.matches ? cfg.zoom - 1 : cfg.zoom),
      {animate: false});
    if (q.get('venue')) {
      var vid = q.get('venue');
      getFeature(vid).then(function (f) {
        if (!f) return;
        var c = f.geometry.coordinates, ll = toDisplay(c[0], c[1]);
        if (!hasView) map.setView(ll, 16);
        openVenue(vid, ll, f);
      });
    }

    map.on('moveend', function () { saveUrlSoon(); loadSoon(); });
    map.on('overlayadd overlayremove', function () { saveUrlSoon(); load(); });
    load();
    saveUrl();
  };
}());
