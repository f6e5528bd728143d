/* "What's on": activities at venues today, this weekend or on a chosen date, for an age.
 *
 * Loaded after map.js and wrapping voicemap.start: it adds a ring on the map around each
 * venue with an activity in the window, and a list sheet like "near me", sorted by time, or
 * by distance once the position is known (voicemap.position, set by "near me"). Days are
 * Beijing's (Asia/Shanghai), as the API's are. Activity data is put in the page only as
 * text (textContent), never as HTML.
 */
(function () {
  'use strict';
  var vm = window.voicemap;
  var start = vm.start;
  var BEIJING = 'Asia/Shanghai';

  /** A Date's calendar day in Beijing as YYYY-MM-DD. */
  function beijingDay(d) {
    var parts = new Intl.DateTimeFormat('en-CA', {timeZone: BEIJING, year: 'numeric',
      month: '2-digit', day: '2-digit'}).formatToParts(d);
    var get = function (k) { return parts.filter(function (p) { return p.type === k; })[0].value; };
    return get('year') + '-' + get('month') + '-' + get('day');
  }
  function addDays(day, n) {
    var d = new Date(day + 'T00:00:00Z');
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }
  function weekday(day) { return new Date(day + 'T00:00:00Z').getUTCDay(); }  // 0 = Sunday

  /** The query window for a choice: today (from now), this weekend, or one date. */
  function windowFor(when, date) {
    var today = beijingDay(new Date());
    if (when === 'date' && date) return {from: date, to: date};
    if (when === 'weekend') {
      var wd = weekday(today);
      var sat = wd === 0 ? addDays(today, -1) : addDays(today, 6 - wd);
      return {from: wd === 0 || wd === 6 ? new Date().toISOString() : sat,
        to: addDays(sat, 1)};
    }
    return {from: new Date().toISOString(), to: today};
  }

  function whatsOn(cfg) {
    var t = cfg.t, lang = cfg.lang, h = vm.h, map = vm.state.map;
    var sheet = document.getElementById('vm-whatson');
    var btn = document.getElementById('vm-whatson-btn');
    var list = document.getElementById('vm-whatson-list');
    var status = document.getElementById('vm-whatson-status');
    var toggle = document.getElementById('vm-whatson-toggle');
    var dateInput = document.getElementById('vm-whatson-date');
    var ageSelect = document.getElementById('vm-whatson-age');
    var distBtn = sheet.querySelector('[data-sort=distance]');
    var rings = L.layerGroup().addTo(map);
    var narrow = window.matchMedia('(max-width: 719px)');
    var state = vm.whatson = {when: 'today', sort: 'time', features: [], loads: 0};
    var controller = null;

    function press(selector, on) {
      Array.prototype.forEach.call(sheet.querySelectorAll(selector), function (b) {
        b.setAttribute('aria-pressed', on(b) ? 'true' : 'false');
      });
    }

    function label(p) {
      var s = p.start, d = new Date(s.slice(0, 10) + 'T00:00:00Z');
      var wd = lang === 'zh' ? '周' + '日一二三四五六'.charAt(d.getUTCDay()) :
        ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()];
      var day = lang === 'zh' ? (d.getUTCMonth() + 1) + '月' + d.getUTCDate() + '日 ' + wd :
        wd + ' ' + d.getUTCDate() + ' ' + d.toLocaleString('en', {month: 'short', timeZone: 'UTC'});
      return day + ' ' + s.slice(11, 16) + '–' + p.end.slice(11, 16);
    }

    function render() {
      list.textContent = '';
      var found = state.features.slice();
      var here = vm.position;
      distBtn.disabled = !here;
      if (state.sort === 'distance' && here) {
        found.forEach(function (f) { f.vmDist = vm.metres(here, f.geometry.coordinates); });
        found.sort(function (a, b) { return a.vmDist - b.vmDist; });
      }
      status.textContent = found.length ? '' : t.act_none;
      found.forEach(function (f, i) {
        var p = f.properties, cancelled = p.status === 'cancelled';
        var meta = [label(p)];
        if (here) meta.push(vm.formatDistance(vm.metres(here, f.geometry.coordinates), t));
        meta.push(p.free ? t.act_free : vm.fmt(t.act_price, {n: p.price}));
        var titleId = 'vm-wo-title-' + i;
        var li = h('li', {class: 'vm-near-item vm-wo-item' + (cancelled ? ' vm-act-cancelled' : ''),
          'data-activity': String(p.activity_id), 'data-start': p.start});
        li.appendChild(h('button', {type: 'button', class: 'vm-near-main',
          'aria-describedby': titleId, onclick: function () { choose(f); }}, [
          h('span', {class: 'vm-near-text'}, [
            h('span', {class: 'vm-near-name vm-data', id: titleId,
              text: p['title_' + lang] || p.title_zh}),
            h('span', {class: 'vm-near-meta vm-data', text: p['venue_name_' + lang] || p.venue_name_zh}),
            h('span', {class: 'vm-near-meta'}, [
              h('span', {class: 'vm-act-when', text: meta.join(' · ')}),
              cancelled ? h('span', {class: 'vm-act-flag', text: t.act_cancelled}) : ''])
          ])
        ]));
        list.appendChild(li);
      });
    }

    /** Show every venue in the window, clear of the sheet (bottom on phones, left wider). */
    function fitRings() {
      var points = rings.getLayers().map(function (m) { return m.getLatLng(); });
      if (!points.length) return;
      var cover = sheet.offsetHeight, side = sheet.offsetWidth;
      var opts = {maxZoom: 15, animate: false};
      if (narrow.matches) {
        opts.paddingTopLeft = [64, 40];  // clear of the zoom and layer controls
        opts.paddingBottomRight = [64, cover + 30];
      } else {
        opts.paddingTopLeft = [side + 40, 40];
        opts.paddingBottomRight = [40, 40];
      }
      map.fitBounds(L.latLngBounds(points), opts);
    }

    function drawRings() {
      rings.clearLayers();
      var seen = {};
      state.features.forEach(function (f) {
        var id = f.properties.venue_id, c = f.geometry.coordinates;
        if (seen[id]) return;
        seen[id] = true;
        rings.addLayer(L.circleMarker(vm.toDisplay(c[0], c[1]), {radius: 20, weight: 3,
          color: '#c2410c', fill: false, interactive: false, className: 'vm-wo-ring'}));
      });
    }

    function load() {
      var w = windowFor(state.when, dateInput.value);
      var q = new URLSearchParams({from: w.from, to: w.to});
      if (ageSelect.value !== '') q.set('age', ageSelect.value);
      if (controller) controller.abort();
      controller = window.AbortController ? new AbortController() : null;
      status.textContent = t.loading;
      list.textContent = '';
      fetch(cfg.urls.activities + '?' + q.toString(), {signal: controller && controller.signal})
        .then(function (r) {
          if (!r.ok) throw new Error('HTTP ' + r.status);
          return r.json();
        })
        .then(function (fc) {
          state.features = fc.features;
          state.loads += 1;
          drawRings();
          render();
          fitRings();
        })
        .catch(function (err) {
          if (err && err.name === 'AbortError') return;
          status.textContent = t.load_failed;
        });
    }

    function choose(f) {
      var c = f.geometry.coordinates, ll = vm.toDisplay(c[0], c[1]);
      map.setView(ll, Math.max(map.getZoom(), 16), {animate: false});
      if (narrow.matches) {
        sheet.classList.add('vm-collapsed');
        toggle.setAttribute('aria-expanded', 'false');
      }
      vm.openVenue(f.properties.venue_id, ll);
    }

    function open() {
      var near = document.getElementById('vm-near');
      if (!near.hidden) document.getElementById('vm-near-close').click();
      sheet.hidden = false;
      sheet.classList.remove('vm-collapsed');
      toggle.setAttribute('aria-expanded', 'true');
      btn.setAttribute('aria-expanded', 'true');
      document.body.classList.add('vm-sheet-open');
      load();
    }
    function close() {
      sheet.hidden = true;
      rings.clearLayers();
      btn.setAttribute('aria-expanded', 'false');
      document.body.classList.remove('vm-sheet-open');
      btn.focus();
    }

    btn.addEventListener('click', open);
    document.getElementById('vm-near-btn').addEventListener('click', function () {
      if (!sheet.hidden) close();
    });
    document.getElementById('vm-whatson-close').addEventListener('click', close);
    toggle.addEventListener('click', function () {
      var collapsed = sheet.classList.toggle('vm-collapsed');
      toggle.setAttribute('aria-expanded', collapsed ? 'false' : 'true');
    });
    sheet.addEventListener('keydown', function (e) { if (e.key === 'Escape') close(); });
    Array.prototype.forEach.call(sheet.querySelectorAll('[data-when]'), function (b) {
      b.addEventListener('click', function () {
        state.when = b.dataset.when;
        dateInput.value = '';
        press('[data-when]', function (x) { return x === b; });
        load();
      });
    });
    dateInput.addEventListener('change', function () {
      if (!dateInput.value) return;
      state.when = 'date';
      press('[data-when]', function () { return false; });
      load();
    });
    ageSelect.addEventListener('change', load);
    Array.prototype.forEach.call(sheet.querySelectorAll('[data-sort]'), function (b) {
      b.addEventListener('click', function () {
        state.sort = b.dataset.sort;
        press('[data-sort]', function (x) { return x === b; });
        render();
      });
    });
    L.DomEvent.disableClickPropagation(sheet);
    L.DomEvent.disableScrollPropagation(sheet);
  }

  vm.start = function (refs, cfg) {
    start(refs, cfg);
    whatsOn(cfg);
  };
}());
