/* Venue markers and the count bubbles of clusters and grid cells, and which markers are on
 * the map. Every marker known stays in state.known; the category's sub-group (and through
 * it the cluster) holds those that pass the filters. Batches go to the cluster with
 * markercluster's addLayers/removeLayers (chunked); the sub-groups' membership is kept
 * with their own addLayer/removeLayer, Leaflet's public API. */
import {fmt, h, icon} from './format.js';

export function setupMarkers(app, vm) {
  const map = app.map, cluster = app.cluster, subs = app.subs, t = app.t, lang = app.lang;
  const cats = app.cats, state = app.state;

  const VenueIcon = L.DivIcon.extend({
    options: {iconSize: [44, 44], iconAnchor: [22, 22], popupAnchor: [0, -14],
      className: 'vm-marker'},
    createIcon: function (old) {
      const div = L.DivIcon.prototype.createIcon.call(this, old);
      const o = this.options;
      div.className += ' vm-c-' + o.cat + (o.voiced ? ' vm-voiced' : '');
      div.setAttribute('data-cat', o.cat);
      div.appendChild(h('span', {class: 'vm-pin', 'aria-hidden': 'true', text: o.glyph}));
      if (o.voiced) div.appendChild(h('span', {class: 'vm-badge'}, [icon('speaker', 12)]));
      return div;
    }
  });
  const icons = {};
  cats.forEach(function (c) {
    icons[c.id] = [new VenueIcon({cat: c.id, glyph: c.icon, voiced: false}),
      new VenueIcon({cat: c.id, glyph: c.icon, voiced: true})];
  });

  const LabelledIcon = L.DivIcon.extend({
    createIcon: function (old) {
      const div = L.DivIcon.prototype.createIcon.call(this, old);
      div.setAttribute('aria-label', this.options.label);
      div.title = this.options.label;
      div.appendChild(this.options.body());
      return div;
    }
  });

  /** A cluster's or grid cell's bubble: its count, and how many have a voice guide. */
  function bubble(n, voiced) {
    const size = n < 10 ? 44 : n < 100 ? 50 : n < 1000 ? 56 : 64;
    let label = fmt(t.cluster_label, {n: n.toLocaleString(lang)}, n);
    if (voiced) label += ' · ' + fmt(t.voiced_count, {n: voiced.toLocaleString(lang)}, voiced);
    return new LabelledIcon({iconSize: [size, size], className: 'vm-cluster', label: label,
      body: function () {
        return h('span', {class: 'vm-cluster-inner' + (voiced ? ' vm-voiced' : ''),
          'aria-hidden': 'true'}, [h('span', {text: n.toLocaleString(lang)}),
          voiced ? h('span', {class: 'vm-badge'}, [icon('speaker', 12)]) : null]);
      }});
  }

  vm.clusterIcon = function (c) {
    let voiced = 0;
    c.getAllChildMarkers().forEach(function (m) { if (m.vm && m.vm.clips) voiced++; });
    return bubble(c.getChildCount(), voiced);
  };

  function makeMarker(row) {
    const cat = cats[row[3]] || cats[0], clips = row[4];
    const label = row[5] + ', ' + cat.label + (clips ? ', ' + t.has_voice : '');
    const m = L.marker(app.toDisplay(row[1], row[2]), {icon: icons[cat.id][clips ? 1 : 0],
      title: label, keyboard: true, riseOnHover: true});
    m.vm = {id: row[0], cat: cat.id, clips: clips, name: row[5], minAge: row[6],
      maxAge: row[7], hours: row[8]};
    m.on('click', function () { app.openVenue(row[0], m.getLatLng()); });
    return m;
  }

  app.passes = function (m) {
    return (!state.voiced || m.vm.clips > 0) && app.familyPasses(m.vm);
  };

  // A sub-group on the map hands each marker it gets to the cluster one at a time. For a
  // batch, it is given a parent that is on no map while it files them (so they reach
  // nothing), then its cluster back, which takes the whole batch in one addLayers.
  const offstage = L.layerGroup();
  function quietly(sub, fn) {
    sub.setParentGroup(offstage);
    try {
      fn();
    } finally {
      sub.setParentGroup(cluster);
      offstage.clearLayers();
    }
  }
  function addBatch(sub, markers) {
    if (!markers.length) return;
    quietly(sub, function () {
      markers.forEach(function (m) {
        // A sub-group (a FeatureGroup) also hears its layers' events; nothing listens there,
        // and the cluster already does.
        sub.addLayer(m);
        m.removeEventParent(sub);
      });
    });
    if (map.hasLayer(sub)) cluster.addLayers(markers);
  }
  function removeBatch(sub, markers) {
    if (!markers.length) return;
    quietly(sub, function () { markers.forEach(function (m) { sub.removeLayer(m); }); });
    if (map.hasLayer(sub)) cluster.removeLayers(markers);
  }

  function clearPoints() {
    cluster.clearLayers();
    Object.keys(subs).forEach(function (k) {
      quietly(subs[k], function () { subs[k].clearLayers(); });
    });
    state.known = {};
    state.knownCount = 0;
  }

  app.showPoints = function (rows) {
    if (state.mode !== 'points') {
      app.gridLayer.clearLayers();
      map.removeLayer(app.gridLayer);
      map.addLayer(cluster);
      state.mode = 'points';
    }
    if (state.knownCount > 20000) clearPoints();  // bound memory on long sessions
    const fresh = {};
    rows.forEach(function (row) {
      if (state.known[row[0]]) return;
      const m = makeMarker(row);
      state.known[row[0]] = m;
      state.knownCount++;
      if (app.passes(m)) (fresh[m.vm.cat] = fresh[m.vm.cat] || []).push(m);
    });
    Object.keys(fresh).forEach(function (cid) { addBatch(subs[cid], fresh[cid]); });
    app.hint.hidden = true;
  };

  app.showGrid = function (cells) {
    if (state.mode !== 'grid') {
      clearPoints();
      map.removeLayer(cluster);
      app.gridLayer.addTo(map);
      state.mode = 'grid';
    }
    app.gridLayer.clearLayers();
    cells.forEach(function (c) {
      const ll = app.toDisplay(c[0], c[1]);
      const m = L.marker(ll, {icon: bubble(c[2], c[3]), keyboard: true});
      m.on('click', function () {
        map.setView(ll, Math.min(map.getZoom() + 2, app.cfg.maxZoom));
      });
      app.gridLayer.addLayer(m);
    });
    app.hint.hidden = cells.length === 0;
  };

  app.activeCats = function () {
    return cats.filter(function (c) { return map.hasLayer(subs[c.id]); })
      .map(function (c) { return c.id; });
  };

  /** Show the known markers that pass every filter, hide the others (in batches). */
  app.refilter = function () {
    const add = {}, remove = {};
    Object.keys(state.known).forEach(function (id) {
      const m = state.known[id], sub = subs[m.vm.cat];
      const shown = sub.hasLayer(m), want = app.passes(m);
      if (shown !== want) {
        const into = want ? add : remove;
        (into[m.vm.cat] = into[m.vm.cat] || []).push(m);
      }
    });
    Object.keys(remove).forEach(function (cid) { removeBatch(subs[cid], remove[cid]); });
    Object.keys(add).forEach(function (cid) { addBatch(subs[cid], add[cid]); });
    app.syncFilters();
    app.renderList();
  };
}
