/* The venue page's small map, and one player at a time. Settings come from a JSON block
 * (no inline script), so the page runs under a CSP without hashes. */
(function () {
  'use strict';
  document.addEventListener('play', function (e) {
    Array.prototype.forEach.call(document.querySelectorAll('audio'), function (a) {
      if (a !== e.target) a.pause();
    });
  }, true);

  // "Back to the map": to the view, filters and popup the family came from. Reached from
  // this site's map (which keeps its state in its URL), go back in history; otherwise the
  // link's plain address (the map, no state).
  var back = document.getElementById('vm-back');
  if (back) {
    back.addEventListener('click', function (e) {
      var from = null;
      try {
        from = document.referrer ? new URL(document.referrer) : null;
      } catch (err) {
        from = null;
      }
      var mapPath = new URL(back.href, location.href).pathname;
      if (from && from.origin === location.origin && from.pathname === mapPath &&
          history.length > 1) {
        e.preventDefault();
        history.back();
      }
    });
  }

  var el = document.getElementById('vm-venue-map');
  var raw = document.getElementById('vm-venue-settings');
  if (!el || !raw || !window.L) return;
  var s = JSON.parse(raw.textContent);
  var lon = s.lon, lat = s.lat;
  if (s.datum === 'gcj02') {
    var g = window.vmGeo.wgs84ToGcj02(lon, lat);
    lon = g[0];
    lat = g[1];
  }
  var map = L.map(el, {zoomControl: false, scrollWheelZoom: false, dragging: !L.Browser.mobile,
    tap: false}).setView([lat, lon], 16);
  L.control.zoom({zoomInTitle: s.t.zoom_in, zoomOutTitle: s.t.zoom_out}).addTo(map);
  map.attributionControl.setPrefix(false);
  var opts = {attribution: s.tiles.attribution, maxZoom: s.tiles.max_zoom};
  if (s.tiles.subdomains) opts.subdomains = s.tiles.subdomains;
  L.tileLayer(s.tiles.url, opts).addTo(map);
  var div = document.createElement('span');
  div.className = 'vm-pin';
  div.textContent = s.glyph;
  L.marker([lat, lon], {keyboard: false, interactive: false, icon: L.divIcon({
    html: div, className: 'vm-marker vm-c-' + s.cat, iconSize: [44, 44], iconAnchor: [22, 22]
  })}).addTo(map);
}());
