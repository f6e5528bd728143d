/* The URL keeps the state (view, categories, filters, open venue, open list), so a view can
 * be shared and the venue page's "back to the map" returns to it. */
import {clamp} from './data.js';

export function setupUrl(app) {
  const map = app.map, state = app.state, cats = app.cats, cfg = app.cfg;

  // The venue page's "back to the map" returns here: the URL must be current before it goes.
  document.addEventListener('click', function (e) {
    if (e.target.closest && e.target.closest('.vm-more a')) saveUrl();
  }, true);

  const langLink = document.getElementById('vm-lang');
  function stateParams(forLang) {
    const c = app.toWgs(map.getCenter());
    const q = new URLSearchParams();
    q.set('lang', forLang);
    q.set('lat', c[1].toFixed(5));
    q.set('lon', c[0].toFixed(5));
    q.set('z', String(Math.round(map.getZoom())));
    const active = app.activeCats();
    if (active.length < cats.length) q.set('category', active.join(','));
    if (state.voiced) q.set('voiced', '1');
    if (state.venue) q.set('venue', state.venue);
    // The family filters and the open list.
    if (state.open) q.set('open', '1');
    if (state.age !== null) q.set('age', String(state.age));
    if (state.list) q.set('list', '1');
    return q;
  }
  function saveUrl() {
    history.replaceState(null, '', '?' + stateParams(app.lang).toString());
    langLink.href = '?' + stateParams(app.other).toString();
  }
  let timer = null;
  app.saveUrlSoon = function () {
    clearTimeout(timer);
    timer = setTimeout(saveUrl, 200);
  };

  /** Set the map from the URL, then load what is in view. */
  app.restore = function () {
    const q = new URLSearchParams(location.search);
    if (q.has('category')) {
      const wanted = q.get('category').split(',');
      cats.forEach(function (c) {
        if (wanted.indexOf(c.id) < 0) map.removeLayer(app.subs[c.id]);
      });
    }
    state.open = q.get('open') === '1';
    const age = parseInt(q.get('age'), 10);
    state.age = isFinite(age) && age >= 0 && age <= 17 ? age : null;
    app.syncFilters();
    if (q.get('list') === '1') setTimeout(app.openList, 0);  // once the view is set
    if (q.get('voiced') === '1') app.setVoiced(true);
    const lat = parseFloat(q.get('lat')), lon = parseFloat(q.get('lon'));
    const z = parseInt(q.get('z'), 10);
    const hasView = isFinite(lat) && isFinite(lon);
    map.setView(hasView ? app.toDisplay(lon, lat) : app.toDisplay(cfg.centre[0], cfg.centre[1]),
      isFinite(z) ? clamp(z, 8, cfg.maxZoom) : (app.narrow.matches ? cfg.zoom - 1 : cfg.zoom),
      {animate: false});
    if (q.get('venue')) {
      const vid = q.get('venue');
      app.getFeature(vid).then(function (f) {
        if (!f) return;
        const c = f.geometry.coordinates, ll = app.toDisplay(c[0], c[1]);
        if (!hasView) map.setView(ll, 16);
        app.openVenue(vid, ll, f);
      });
    }

    map.on('moveend', function () { app.saveUrlSoon(); app.loadSoon(); });
    map.on('overlayadd overlayremove', function () { app.saveUrlSoon(); app.load(); });
    app.load();
    saveUrl();
  };
}
