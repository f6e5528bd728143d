/* A small map of the features on an OGC API page. Settings come from a JSON block (no
 * inline script), so the page runs under the app's CSP. Coordinates are CRS84 (WGS-84). */
(function () {
  'use strict';
  var el = document.getElementById('ogc-map');
  var raw = document.getElementById('ogc-map-settings');
  if (!el || !raw || !window.L) return;
  var s = JSON.parse(raw.textContent);
  if (!s.points.length) return;
  var shift = function (p) {
    if (s.tiles.datum === 'gcj02' && window.vmGeo) return window.vmGeo.wgs84ToGcj02(p.lon, p.lat);
    return [p.lon, p.lat];
  };
  var map = L.map(el, {scrollWheelZoom: false, dragging: !L.Browser.mobile, tap: false});
  map.attributionControl.setPrefix(false);
  var opts = {attribution: s.tiles.attribution, maxZoom: s.tiles.max_zoom};
  if (s.tiles.subdomains) opts.subdomains = s.tiles.subdomains;
  L.tileLayer(s.tiles.url, opts).addTo(map);
  var bounds = [];
  s.points.forEach(function (p) {
    var ll = shift(p);
    bounds.push([ll[1], ll[0]]);
    L.circleMarker([ll[1], ll[0]], {radius: 7, weight: 2, color: '#1a56db', fillOpacity: 0.6})
      .bindTooltip(p.id).addTo(map);
  });
  if (bounds.length === 1) map.setView(bounds[0], 16);
  else map.fitBounds(bounds, {padding: [16, 16], maxZoom: 16});
}());
