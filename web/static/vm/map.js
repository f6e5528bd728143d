/* voicemap's map page: the entry point of its ES modules (web/static/vm/map/).
 *
 * Folium builds the shell (map, marker cluster, one sub-group per category, layer control)
 * and calls voicemap.start() with those objects. Everything else happens in the modules:
 * venues come from /api/map/venues for the view (compact rows, or grid counts when a view
 * holds too many; data.js, markers.js), popups (popup.js) and the near-me and list sheets
 * (near.js, list.js) are built as DOM with textContent (venue data is untrusted), audio
 * plays only from a tap, filters (filters.js, hours.js) and the URL (url.js) keep the view
 * so it can be shared. Coordinates from the server are WGS-84; with a GCJ-02 basemap they
 * are shifted for display (gcj02.js) and shifted back before anything is sent to the server.
 * Only Leaflet's and markercluster's public API is used.
 *
 * The modules share one object, `app` (the map, settings, state, and each module's
 * functions, looked up when called); `window.voicemap` is the page's interface for the
 * classic scripts (search.js, whatson.js, works-map.js) and the tests.
 */
import {fmt, formatDistance, h, plural, setLocale, sphereMetres} from './map/format.js';
import {setupControls} from './map/controls.js';
import {setupData} from './map/data.js';
import {setupFamily, setupVoiced} from './map/filters.js';
import {openState} from './map/hours.js';
import {setupLayout} from './map/layout.js';
import {setupList} from './map/list.js';
import {setupMarkers} from './map/markers.js';
import {setupNear} from './map/near.js';
import {setupPopup} from './map/popup.js';
import {setupUrl} from './map/url.js';

// Only one player at a time, wherever it is on the page.
document.addEventListener('play', function (e) {
  Array.prototype.forEach.call(document.querySelectorAll('audio'), function (a) {
    if (a !== e.target) a.pause();
  });
}, true);

const vm = window.voicemap = {formatDistance: formatDistance, geo: window.vmGeo, h: h,
  fmt: fmt, plural: plural, openState: openState, metres: sphereMetres};

vm.start = function (refs, cfg) {
  const map = refs.map, lang = cfg.lang;
  setLocale(lang);
  const shift = cfg.datum === 'gcj02';
  const app = {map: map, cluster: refs.cluster, subs: refs.layers, control: refs.control,
    cfg: cfg, t: cfg.t, lang: lang, other: lang === 'zh' ? 'en' : 'zh',
    cats: cfg.categories, catById: {}, gridLayer: L.layerGroup(),
    narrow: window.matchMedia('(max-width: 719px)')};
  app.cats.forEach(function (c) { app.catById[c.id] = c; });
  app.state = vm.state = {map: map, cluster: refs.cluster, layers: refs.layers, mode: 'points',
    voiced: false, venue: null, loading: 0, loads: 0, known: {}, knownCount: 0};

  app.toDisplay = vm.toDisplay = function (lon, lat) {
    if (shift) {
      const g = vm.geo.wgs84ToGcj02(lon, lat);
      return L.latLng(g[1], g[0]);
    }
    return L.latLng(lat, lon);
  };
  app.toWgs = vm.toWgs = function (ll) {
    return shift ? vm.geo.gcj02ToWgs84(ll.lng, ll.lat) : [ll.lng, ll.lat];
  };

  setupControls(app);
  setupMarkers(app, vm);
  setupData(app, vm);
  setupPopup(app, vm);
  setupNear(app, vm);
  setupVoiced(app);
  setupLayout(app);
  setupFamily(app);
  setupList(app, vm);
  setupUrl(app);
  app.restore();
  if (window.vmSearch) window.vmSearch.init(vm, cfg);  // the search box (search.js)
};
