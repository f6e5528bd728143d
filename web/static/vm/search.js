/* The map's venue search: Chinese or English name, or pinyin without tones ("gugong").
 *
 * A search button (a map control beside the zoom buttons) opens a box over the top bar:
 * an ARIA 1.2 combobox (role=combobox, aria-expanded, aria-controls,
 * aria-activedescendant) with a listbox of options. Up/Down
 * move, Enter opens the venue's popup (the first one if none is chosen), Escape closes the
 * list, then the box. Results come from GET /api/search?q= (the server keeps every name's
 * pinyin); coordinates are WGS-84 and go through map.js's toDisplay. Names are untrusted
 * and go in as textContent.
 */
(function (root) {
  'use strict';

  var SVGNS = 'http://www.w3.org/2000/svg';

  function svg(d, extra) {
    var s = document.createElementNS(SVGNS, 'svg');
    s.setAttribute('viewBox', '0 0 24 24');
    s.setAttribute('width', '22');
    s.setAttribute('height', '22');
    s.setAttribute('aria-hidden', 'true');
    s.setAttribute('focusable', 'false');
    d.forEach(function (attrs) {
      var e = document.createElementNS(SVGNS, attrs.circle ? 'circle' : 'path');
      Object.keys(attrs).forEach(function (k) { if (k !== 'circle') e.setAttribute(k, attrs[k]); });
      s.appendChild(e);
    });
    return s;
  }
  var STROKE = {fill: 'none', stroke: 'currentColor', 'stroke-width': '2.4',
    'stroke-linecap': 'round'};
  function withStroke(o) {
    Object.keys(STROKE).forEach(function (k) { o[k] = STROKE[k]; });
    return o;
  }
  function searchIcon() {
    return svg([withStroke({circle: true, cx: '10.5', cy: '10.5', r: '6.5'}),
      withStroke({d: 'M15.5 15.5L21 21'})]);
  }
  function closeIcon() { return svg([withStroke({d: 'M6 6l12 12M18 6L6 18'})]); }

  function init(vm, cfg) {
    var t = cfg.t, lang = cfg.lang, other = lang === 'zh' ? 'en' : 'zh';
    var h = vm.h, map = vm.state.map;
    if (!cfg.urls.search) return;
    var catLabel = {};
    cfg.categories.forEach(function (c) { catLabel[c.id] = c; });
    var HTML_LANG = {zh: 'zh-CN', en: 'en'};

    var openBtn = h('button', {type: 'button', class: 'vm-btn vm-search-open', id: 'vm-search-btn',
      'aria-expanded': 'false', 'aria-controls': 'vm-search', title: t.ven_search_label},
      [searchIcon(), h('span', {class: 'vm-search-open-text', text: t.ven_search})]);
    var input = h('input', {type: 'search', id: 'vm-search-input', class: 'vm-search-input',
      role: 'combobox', 'aria-autocomplete': 'list', 'aria-expanded': 'false',
      'aria-controls': 'vm-search-list', autocomplete: 'off', autocapitalize: 'off',
      spellcheck: 'false', enterkeyhint: 'search', placeholder: t.ven_search_hint});
    var label = h('label', {for: 'vm-search-input', class: 'vm-sr', text: t.ven_search_label});
    var closeBtn = h('button', {type: 'button', class: 'vm-icon-btn vm-search-close',
      'aria-label': t.ven_search_close, title: t.ven_search_close}, [closeIcon()]);
    var list = h('ul', {id: 'vm-search-list', class: 'vm-search-list', role: 'listbox',
      'aria-label': t.ven_search_label, hidden: true});
    var status = h('p', {class: 'vm-sr', role: 'status', 'aria-live': 'polite'});
    var panel = h('div', {class: 'vm-search', id: 'vm-search', role: 'search', hidden: true},
      [label, input, closeBtn, list, status]);
    // The button is a map control beside the zoom buttons (the top bar is full on a phone).
    var SearchControl = L.Control.extend({
      options: {position: 'topleft'},
      onAdd: function () {
        var wrap = h('div', {class: 'leaflet-control vm-search-control'}, [openBtn]);
        L.DomEvent.disableClickPropagation(wrap);
        return wrap;
      }
    });
    new SearchControl().addTo(map);
    document.body.appendChild(panel);
    L.DomEvent.disableClickPropagation(panel);
    L.DomEvent.disableScrollPropagation(panel);

    var results = [], active = -1, seq = 0, timer = null, controller = null, cache = {};

    function setExpanded(on) {
      list.hidden = !on;
      input.setAttribute('aria-expanded', on ? 'true' : 'false');
      if (!on) setActive(-1);
    }
    function setActive(i) {
      active = i;
      Array.prototype.forEach.call(list.children, function (li, j) {
        li.setAttribute('aria-selected', j === i ? 'true' : 'false');
        if (j === i) li.scrollIntoView({block: 'nearest'});
      });
      if (i >= 0 && list.children[i]) {
        input.setAttribute('aria-activedescendant', list.children[i].id);
      } else {
        input.removeAttribute('aria-activedescendant');
      }
    }

    function render(found) {
      results = found;
      list.textContent = '';
      found.forEach(function (v, i) {
        var cat = catLabel[v.category] || cfg.categories[0];
        var li = h('li', {id: 'vm-search-opt-' + i, role: 'option', class: 'vm-search-opt',
          'aria-selected': 'false', 'data-id': v.id}, [
          h('span', {class: 'vm-swatch vm-c-' + cat.id, 'aria-hidden': 'true', text: cat.icon}),
          h('span', {class: 'vm-search-text'}, [
            h('span', {class: 'vm-search-name vm-data', lang: HTML_LANG[lang],
              text: v['name_' + lang] || v.name_zh}),
            h('span', {class: 'vm-search-alt vm-data', lang: HTML_LANG[other],
              text: v['name_' + other] || ''})
          ])
        ]);
        li.addEventListener('mousedown', function (e) { e.preventDefault(); });  // keep focus
        li.addEventListener('click', function () { choose(i); });
        list.appendChild(li);
      });
      if (found.length) {
        setExpanded(true);
        status.textContent = vm.fmt(t.ven_search_count, {n: found.length});
      } else {
        setExpanded(false);
        status.textContent = t.ven_search_none;
        list.hidden = false;
        list.appendChild(h('li', {class: 'vm-search-none', role: 'option',
          'aria-disabled': 'true', id: 'vm-search-none', text: t.ven_search_none}));
        input.setAttribute('aria-expanded', 'true');
      }
    }

    function run() {
      var q = input.value.trim();
      var mine = ++seq;
      if (controller) controller.abort();
      if (!q) {
        results = [];
        list.textContent = '';
        setExpanded(false);
        status.textContent = '';
        return;
      }
      if (cache[q]) return render(cache[q]);
      controller = root.AbortController ? new AbortController() : null;
      fetch(cfg.urls.search + '?' + new URLSearchParams({q: q}).toString(),
        {signal: controller ? controller.signal : undefined})
        .then(function (r) {
          if (!r.ok) throw new Error('HTTP ' + r.status);
          return r.json();
        })
        .then(function (d) {
          cache[q] = d.venues;
          if (mine === seq) render(d.venues);
        })
        .catch(function (err) {
          if (err && err.name === 'AbortError') return;
          status.textContent = t.ven_search_failed;
        });
    }

    function choose(i) {
      var v = results[i];
      if (!v) return;
      var ll = vm.toDisplay(v.lon, v.lat);
      closePanel(false);
      map.setView(ll, Math.max(map.getZoom(), 16), {animate: false});
      vm.openVenue(v.id, ll);  // focuses the popup's heading once it is filled
    }

    function openPanel() {
      panel.hidden = false;
      openBtn.setAttribute('aria-expanded', 'true');
      document.body.classList.add('vm-search-on');
      input.focus();
      if (input.value.trim()) run();
    }
    function closePanel(refocus) {
      setExpanded(false);
      panel.hidden = true;
      openBtn.setAttribute('aria-expanded', 'false');
      document.body.classList.remove('vm-search-on');
      if (refocus) openBtn.focus();
    }
    vm.search = {open: openPanel, close: closePanel, input: input, list: list};

    openBtn.addEventListener('click', openPanel);
    closeBtn.addEventListener('click', function () { closePanel(true); });
    input.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(run, 150);
    });
    input.addEventListener('keydown', function (e) {
      var n = results.length;
      if (e.key === 'ArrowDown') {
        e.preventDefault();
        if (list.hidden && n) setExpanded(true);
        if (n) setActive((active + 1) % n);
      } else if (e.key === 'ArrowUp') {
        e.preventDefault();
        if (list.hidden && n) setExpanded(true);
        if (n) setActive(active <= 0 ? n - 1 : active - 1);
      } else if (e.key === 'Enter') {
        e.preventDefault();
        if (n) choose(active >= 0 ? active : 0);
      } else if (e.key === 'Escape') {
        e.preventDefault();
        if (!list.hidden && input.value) setExpanded(false);
        else closePanel(true);
      }
    });
    input.addEventListener('blur', function () {
      // a tap elsewhere closes the list (an option's mousedown keeps the focus)
      setTimeout(function () {
        if (document.activeElement !== input) setExpanded(false);
      }, 150);
    });
  }

  root.vmSearch = {init: init};
}(this));
