/* The map's "Children's works" layer: public works (WGS-84 points from /api/map/works),
 * clustered, each with a popup (thumbnail, title, first name and age, a link to its page).
 * An award-winning work (w[8]: gold, silver, bronze, merit; only once the results are
 * published) has a medal on its marker and its award in the popup.
 * It wraps voicemap.start, so map.js stays as it is. Text is set with textContent. */
(function () {
  'use strict';
  var vm = window.voicemap;
  if (!vm || !window.L) return;
  var start = vm.start;
  // Up and to the right of the point: a work pinned to a venue sits beside the venue's
  // marker (on the same point), and both can be tapped.
  var ANCHOR = [-14, 50];
  vm.start = function (refs, cfg) {
    start(refs, cfg);
    var map = refs.map, t = cfg.t, h = vm.h;
    var root = cfg.urls.home.replace(/\/$/, '');
    var layer = L.markerClusterGroup({showCoverageOnHover: false, maxClusterRadius: 48,
      iconCreateFunction: function (c) {
        return L.divIcon({html: '<span class="vm-pin">🎨</span><span class="vm-badge">' +
          c.getChildCount() + '</span>', className: 'vm-marker vm-work-marker',
          iconSize: [44, 44], iconAnchor: ANCHOR});
      }});
    var label = '<span class="vm-swatch" aria-hidden="true">🎨</span>' +
      '<span class="vm-layer-label">' + (t.works_layer || 'Works').replace(/</g, '&lt;') +
      '</span>';
    refs.control.addOverlay(layer, label);
    var q = new URLSearchParams(location.search);
    if (q.get('works') !== '0') layer.addTo(map);
    var byline = t.works_by || '{name}, {age}';
    function popup(w) {
      var url = root + '/works/' + encodeURIComponent(w[0]) + '?lang=' + cfg.lang;
      var kids = [];
      if (w[7]) {
        kids.push(h('img', {src: root + '/media/works/' + encodeURIComponent(w[0]) + '/thumb',
          alt: '', loading: 'lazy'}));
      }
      if (w[8]) {
        var award = t['judge_award_' + w[8]] || w[8];
        kids.push(h('span', {class: 'vm-award vm-award-' + w[8], text: award}));
      }
      kids.push(h('h2', {class: 'vm-data', text: w[4]}));
      kids.push(h('p', {class: 'vm-muted', text: (t['works_kind_' + w[3]] || w[3]) + ' · ' +
        vm.fmt(byline, {name: w[5], age: w[6]}, w[6])}));
      kids.push(h('a', {href: url, text: t.works_open || 'Open'}));
      return h('div', {class: 'vm-work-pop', 'data-work': w[0]}, kids);
    }
    fetch(root + '/api/map/works', {credentials: 'same-origin'}).then(function (r) {
      return r.ok ? r.json() : {works: []};
    }).then(function (data) {
      data.works.forEach(function (w) {
        var medal = w[8] ? '<span class="vm-medal" aria-hidden="true">' +
          (w[8] === 'merit' ? '★' : '🏅') + '</span>' : '';
        var icon = L.divIcon({html: '<span class="vm-pin">🎨</span>' + medal,
          className: 'vm-marker vm-work-marker' + (w[8] ? ' vm-work-award vm-work-' + w[8] : ''),
          iconSize: [44, 44], iconAnchor: ANCHOR, popupAnchor: [22, -20]});
        var name = w[8] ? w[4] + ' (' + (t['judge_award_' + w[8]] || w[8]) + ')' : w[4];
        var marker = L.marker(vm.toDisplay(w[1], w[2]), {icon: icon, title: name,
          alt: name, keyboard: true});
        marker.bindPopup(function () { return popup(w); }, {className: 'vm-leaflet-popup',
          maxWidth: Math.max(200, Math.min(280, window.innerWidth - 58))});
        layer.addLayer(marker);
      });
    }).catch(function () { /* the venue layers work without it */ });
  };
}());
