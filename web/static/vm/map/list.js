/* A list of what is on screen, nearest first when the position is known. */
import {HTML_LANG, fmt, formatDistance, h, sphereMetres as metres} from './format.js';
import {OPEN_TEXT, openState} from './hours.js';

const LIST_MAX = 100;

export function setupList(app, vm) {
  const map = app.map, t = app.t, lang = app.lang, state = app.state, subs = app.subs;
  const listSheet = document.getElementById('vm-list');
  const listItems = document.getElementById('vm-list-items');
  const listStatus = document.getElementById('vm-list-status');
  const listToggle = document.getElementById('vm-list-toggle');
  const listBody = document.getElementById('vm-list-body');
  const listBtn = document.getElementById('vm-list-btn');
  listBody.insertBefore(app.filterBar(), listBody.firstChild);

  app.renderList = vm.renderList = function () {
    if (!listSheet || listSheet.hidden) return;
    const bounds = map.getBounds(), here = vm.position;
    const rows = [];
    Object.keys(state.known).forEach(function (id) {
      const m = state.known[id];
      if (!app.passes(m) || !map.hasLayer(subs[m.vm.cat]) || !bounds.contains(m.getLatLng())) return;
      rows.push({m: m, d: here ? metres(here, app.toWgs(m.getLatLng())) : null});
    });
    rows.sort(here ? function (a, b) { return a.d - b.d; }
      : function (a, b) { return String(a.m.vm.name).localeCompare(String(b.m.vm.name), lang); });
    listItems.textContent = '';
    listStatus.textContent = rows.length
      ? fmt(here ? t.map_list_count_near : t.map_list_count, {n: rows.length})
        + (rows.length > LIST_MAX ? ' ' + fmt(t.map_list_more, {n: LIST_MAX}) : '')
      : t.map_list_empty;
    rows.slice(0, LIST_MAX).forEach(function (row, i) {
      const v = row.m.vm, cat = app.catById[v.cat] || app.cats[0], ll = row.m.getLatLng();
      const open = openState(v.hours);
      const meta = [];
      if (row.d !== null) meta.push(h('span', {class: 'vm-near-dist', text: formatDistance(row.d, t)}), ' · ');
      meta.push(cat.label, ' · ', h('span', {class: 'vm-open vm-open-' + open, text: t[OPEN_TEXT[open]]}));
      if (v.clips) meta.push(' · ', t.has_voice);
      listItems.appendChild(h('li', {class: 'vm-near-item', 'data-id': v.id}, [
        h('button', {type: 'button', class: 'vm-near-main', onclick: function () {
          map.setView(ll, Math.max(map.getZoom(), 16), {animate: false});
          if (app.narrow.matches) {
            listSheet.classList.add('vm-collapsed');
            listToggle.setAttribute('aria-expanded', 'false');
          }
          app.openVenue(v.id, ll);
        }}, [
          h('span', {class: 'vm-swatch vm-c-' + cat.id, 'aria-hidden': 'true', text: cat.icon}),
          h('span', {class: 'vm-near-text'}, [
            h('span', {class: 'vm-near-name vm-data', id: 'vm-list-name-' + i,
              lang: HTML_LANG[lang], text: v.name || v.id}),
            h('span', {class: 'vm-near-meta'}, meta)])
        ])]));
    });
  };

  app.openList = function () {
    if (!app.sheet.hidden) app.closeSheet();
    const wo = document.getElementById('vm-whatson');
    if (wo && !wo.hidden) document.getElementById('vm-whatson-close').click();
    listSheet.hidden = false;
    listSheet.classList.remove('vm-collapsed');
    listToggle.setAttribute('aria-expanded', 'true');
    listBtn.setAttribute('aria-expanded', 'true');
    state.list = true;
    app.renderList();
    app.saveUrlSoon();
  };
  function closeList(focus) {
    if (listSheet.hidden) return;
    listSheet.hidden = true;
    state.list = false;
    listBtn.setAttribute('aria-expanded', 'false');
    if (focus) listBtn.focus();
    app.saveUrlSoon();
  }
  listBtn.addEventListener('click', function () {
    if (listSheet.hidden) {
      app.openList();
      listToggle.focus();
    } else {
      closeList(false);
    }
  });
  document.getElementById('vm-list-close').addEventListener('click', function () {
    closeList(true);
  });
  listToggle.addEventListener('click', function () {
    const collapsed = listSheet.classList.toggle('vm-collapsed');
    listToggle.setAttribute('aria-expanded', collapsed ? 'false' : 'true');
  });
  listSheet.addEventListener('keydown', function (e) { if (e.key === 'Escape') closeList(true); });
  ['vm-near-btn', 'vm-whatson-btn'].forEach(function (bid) {
    document.getElementById(bid).addEventListener('click', function () { closeList(false); });
  });
  L.DomEvent.disableClickPropagation(listSheet);
  L.DomEvent.disableScrollPropagation(listSheet);
  map.on('moveend overlayadd overlayremove', function () { app.renderList(); });
}
