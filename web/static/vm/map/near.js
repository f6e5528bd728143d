/* "Near me": the position (geolocation, or a tap on the map), the nearest venues in a sheet
 * with a play button each, and, when none nearby has a voice guide, the nearest that do.
 * Positions are WGS-84 here and on the wire; the map shows them in its own datum. */
import {HTML_LANG, formatDistance, h, icon} from './format.js';

export function setupNear(app, vm) {
  const map = app.map, t = app.t, lang = app.lang, cfg = app.cfg, state = app.state;
  const sheet = app.sheet = document.getElementById('vm-near');
  const sheetTitle = document.getElementById('vm-near-title');
  const sheetStatus = document.getElementById('vm-near-status');
  const sheetList = document.getElementById('vm-near-list');
  const sheetToggle = document.getElementById('vm-near-toggle');
  const mapEl = map.getContainer();
  let you = null;
  app.tapping = false;
  app.lastNear = null;

  function openSheet() {
    sheet.hidden = false;
    sheet.classList.remove('vm-collapsed');
    sheetToggle.setAttribute('aria-expanded', 'true');
    document.body.classList.add('vm-sheet-open');
  }
  app.closeSheet = function () {
    sheet.hidden = true;
    stopTapping();
    document.body.classList.remove('vm-sheet-open');
    document.getElementById('vm-near-btn').focus();
  };
  function setStatus(text) { sheetStatus.textContent = text || ''; }
  function stopTapping() {
    if (app.tapping) map.off('click', onTap);
    app.tapping = false;
    mapEl.classList.remove('vm-tapping');
  }
  function askTap(message) {
    stopTapping();
    openSheet();
    sheetList.textContent = '';
    setStatus(message);
    app.tapping = true;
    mapEl.classList.add('vm-tapping');
    map.once('click', onTap);
  }
  function onTap(e) {
    app.tapping = false;
    mapEl.classList.remove('vm-tapping');
    const w = app.toWgs(e.latlng);
    app.nearFrom(w[0], w[1], true);
  }

  function showYou(lon, lat) {
    const ll = app.toDisplay(lon, lat);
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
      app.nearFrom(pos.coords.longitude, pos.coords.latitude, false);
    }, function () {
      askTap(t.location_failed);
    }, {enableHighAccuracy: true, timeout: 12000, maximumAge: 60000});
  }

  /** Centre on `ll`, above the sheet where the sheet covers the bottom of the map. */
  function centreAbove(ll, zoom) {
    const cover = app.narrow.matches && !sheet.hidden ? sheet.offsetHeight : 0;
    const p = map.project(ll, zoom).add([0, cover / 2]);
    map.setView(map.unproject(p, zoom), zoom);
  }

  function passesFilters(f) {
    return app.familyPasses({minAge: f.properties.min_age, maxAge: f.properties.max_age,
      hours: f.properties.opening_hours});
  }

  app.nearFrom = function (lon, lat, tapped) {
    const ll = showYou(lon, lat), zoom = Math.max(map.getZoom(), 14);
    sheetTitle.textContent = tapped ? t.nearest_from_tap : t.nearest_title;
    setStatus(t.loading);
    const active = app.activeCats();
    app.lastNear = [lon, lat, tapped];
    const q = new URLSearchParams({lat: lat.toFixed(6), lon: lon.toFixed(6),
      k: state.voiced || state.open || state.age !== null ? '100' : '10'});
    if (active.length && active.length < app.cats.length) q.set('category', active.join(','));
    fetch(cfg.urls.nearest + '?' + q.toString())
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(function (fc) {
        const found = fc.features.filter(function (f) {
          return (!state.voiced || f.properties.clip_count > 0) && passesFilters(f);
        }).slice(0, 10);
        if (!offerVoiced(found, q)) renderNear(found);
        centreAbove(ll, zoom);
      })
      .catch(function () {
        setStatus(t.load_failed);
        centreAbove(ll, zoom);
      });
  };

  function renderNear(found) {
    sheetList.textContent = '';
    setStatus(found.length ? '' : t.no_results);
    found.forEach(function (f, i) { sheetList.appendChild(nearItem(f, i)); });
  }

  /** Near me found no voice guide: say so, offer the nearest that have one. Returns false
   * when there is nothing to offer (the plain list is shown instead). */
  function offerVoiced(found, q) {
    if (state.voiced || !found.length) return false;
    if (found.some(function (f) { return f.properties.clip_count > 0; })) return false;
    const want = app.lastNear;
    const more = new URLSearchParams(q);
    more.set('k', '100');
    fetch(cfg.urls.nearest + '?' + more.toString())
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(function (fc) {
        if (want !== app.lastNear) return;
        const voiced = fc.features.filter(function (f) {
          return f.properties.clip_count > 0 && passesFilters(f);
        }).slice(0, 3);
        sheetList.textContent = '';
        setStatus(voiced.length ? t.map_no_guides_near : t.map_no_guides_anywhere);
        voiced.forEach(function (f, i) {
          const li = nearItem(f, 'v' + i);
          li.classList.add('vm-near-voiced');
          sheetList.appendChild(li);
        });
        sheetList.appendChild(h('li', {class: 'vm-near-sep', text: t.map_nearby_without}));
        found.forEach(function (f, i) { sheetList.appendChild(nearItem(f, i)); });
      })
      .catch(function () { if (want === app.lastNear) renderNear(found); });
    return true;
  }

  /** One venue of the near-me list: its name, distance and category, and a play button. */
  function nearItem(f, i) {
    const p = f.properties, cat = app.catById[p.category] || app.cats[0];
    const nameId = 'vm-near-name-' + i;
    const li = h('li', {class: 'vm-near-item', 'data-id': p.id});
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
    const btn = h('button', {type: 'button', class: 'vm-play', 'aria-label': t.play,
      'aria-describedby': nameId, 'aria-pressed': 'false', disabled: true}, [icon('play', 22)]);
    let audio = null;
    function paint(playing) {
      btn.textContent = '';
      btn.appendChild(icon(playing ? 'pause' : 'play', 22));
      btn.setAttribute('aria-label', playing ? t.pause : t.play);
      btn.setAttribute('aria-pressed', playing ? 'true' : 'false');
    }
    app.getClips(id).then(function (clips) {
      if (!clips.length) {
        btn.hidden = true;
        return;
      }
      const c = clips[0];  // the server's order: the page's language first
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
        const p = audio.play();
        if (p && p.catch) p.catch(function () { paint(false); });
      } else {
        audio.pause();
      }
    });
    return btn;
  }

  function choose(f) {
    const c = f.geometry.coordinates, ll = app.toDisplay(c[0], c[1]);
    map.setView(ll, Math.max(map.getZoom(), 16), {animate: false});
    if (app.narrow.matches) {
      sheet.classList.add('vm-collapsed');
      sheetToggle.setAttribute('aria-expanded', 'false');
    }
    app.openVenue(f.properties.id, ll, f);
  }

  document.getElementById('vm-near-btn').addEventListener('click', locate);
  document.getElementById('vm-pick').addEventListener('click', function () {
    askTap(t.tap_prompt);
  });
  document.getElementById('vm-near-close').addEventListener('click', app.closeSheet);
  sheetToggle.addEventListener('click', function () {
    const collapsed = sheet.classList.toggle('vm-collapsed');
    sheetToggle.setAttribute('aria-expanded', collapsed ? 'false' : 'true');
  });
  sheet.addEventListener('keydown', function (e) {
    if (e.key === 'Escape') app.closeSheet();
  });
  L.DomEvent.disableClickPropagation(sheet);
  L.DomEvent.disableScrollPropagation(sheet);
}
