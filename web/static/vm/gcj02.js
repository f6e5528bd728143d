/* GCJ-02 <-> WGS-84, and GCJ-02 <-> BD-09 (Baidu), a port of voicemap/geo.py (tests compare
 * the two).
 *
 * GCJ-02 is the datum of Gaode/AMap tiles and of WeChat's location API; inside mainland
 * China it is offset from WGS-84 by a few hundred metres. Outside the conventional China
 * rectangle both coincide. The inverse is solved by fixed-point iteration, like geo.py.
 */
(function (root) {
  'use strict';
  var A = 6378245.0;
  var EE = 0.00669342162296594323;
  var PI = Math.PI;

  function outsideChina(lon, lat) {
    return !(lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271);
  }

  function delta(lon, lat) {
    var x = lon - 105.0, y = lat - 35.0;
    var dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y +
      0.2 * Math.sqrt(Math.abs(x));
    dlat += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2 / 3;
    dlat += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2 / 3;
    dlat += (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2 / 3;
    var dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    dlon += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2 / 3;
    dlon += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2 / 3;
    dlon += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2 / 3;
    var radlat = lat / 180.0 * PI;
    var magic = 1 - EE * Math.pow(Math.sin(radlat), 2);
    var sqrtmagic = Math.sqrt(magic);
    dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sqrtmagic) * PI);
    dlon = (dlon * 180.0) / (A / sqrtmagic * Math.cos(radlat) * PI);
    return [dlon, dlat];
  }

  /** [lon, lat] in GCJ-02 for a WGS-84 point (unchanged outside China). */
  function wgs84ToGcj02(lon, lat) {
    if (outsideChina(lon, lat)) return [lon, lat];
    var d = delta(lon, lat);
    return [lon + d[0], lat + d[1]];
  }

  /** [lon, lat] in WGS-84 for a GCJ-02 point, exact to about 1 mm. */
  function gcj02ToWgs84(lon, lat) {
    if (outsideChina(lon, lat)) return [lon, lat];
    var wlon = lon, wlat = lat;
    for (var i = 0; i < 30; i++) {
      var g = wgs84ToGcj02(wlon, wlat);
      var elon = g[0] - lon, elat = g[1] - lat;
      wlon -= elon;
      wlat -= elat;
      if (Math.abs(elon) < 1e-10 && Math.abs(elat) < 1e-10) break;
    }
    return [wlon, wlat];
  }

  var X_PI = PI * 3000.0 / 180.0;

  /** [lon, lat] in BD-09 (Baidu) for a GCJ-02 point. */
  function gcj02ToBd09(lon, lat) {
    var z = Math.sqrt(lon * lon + lat * lat) + 0.00002 * Math.sin(lat * X_PI);
    var theta = Math.atan2(lat, lon) + 0.000003 * Math.cos(lon * X_PI);
    return [z * Math.cos(theta) + 0.0065, z * Math.sin(theta) + 0.006];
  }

  /** [lon, lat] in GCJ-02 for a BD-09 point (fixed-point iteration, like geo.py). */
  function bd09ToGcj02(lon, lat) {
    var glon = lon - 0.0065, glat = lat - 0.006;
    for (var i = 0; i < 30; i++) {
      var b = gcj02ToBd09(glon, glat);
      var elon = b[0] - lon, elat = b[1] - lat;
      glon -= elon;
      glat -= elat;
      if (Math.abs(elon) < 1e-10 && Math.abs(elat) < 1e-10) break;
    }
    return [glon, glat];
  }

  /** [lon, lat] in BD-09 for a WGS-84 point (through GCJ-02). */
  function wgs84ToBd09(lon, lat) {
    var g = wgs84ToGcj02(lon, lat);
    return gcj02ToBd09(g[0], g[1]);
  }

  var api = {wgs84ToGcj02: wgs84ToGcj02, gcj02ToWgs84: gcj02ToWgs84, gcj02ToBd09: gcj02ToBd09,
    bd09ToGcj02: bd09ToGcj02, wgs84ToBd09: wgs84ToBd09};
  if (typeof module === 'object' && module.exports) module.exports = api;
  else root.vmGeo = api;
}(this));
