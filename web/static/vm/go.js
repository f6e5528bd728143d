/* "Go there" and "share": open a venue in the phone's map app, or pass its page on.
 *
 * links() fills the URL templates of facts.json as voicemap.venue_text.map_app_links does (a
 * test compares them): Gaode/Amap takes GCJ-02, Baidu BD-09 (latitude first), Apple Maps
 * GCJ-02 (its map of mainland China is AutoNavi's). Venue coordinates come in as WGS-84 and are converted by gcj02.js.
 * The venue page renders the same links on the server; block() builds them for the map's
 * popup, enhance() shows Apple Maps on Apple devices and wires the share buttons.
 */
(function (root) {
  'use strict';

  /** encodeURIComponent, plus the characters Python's quote(safe="") also escapes. */
  function q(s) {
    return encodeURIComponent(String(s)).replace(/[!'()*]/g, function (c) {
      return '%' + c.charCodeAt(0).toString(16).toUpperCase();
    });
  }

  /** The URL templates of web/static/vm/facts.json (map_apps), as the venue page's. */
  function appTemplates(given) {
    if (given) return given;
    return require('./facts.json').map_apps;  // Node (the tests): the file beside this one
  }

  /** {amap, baidu, apple}: URLs opening the venue (WGS-84 lon, lat) in each map app, from
   * `templates` (facts.json's map_apps: the map page's settings carry them). */
  function links(name, lon, lat, address, templates) {
    var geo = root.vmGeo || require('./gcj02.js');  // Node (the tests) has no window
    var g = geo.wgs84ToGcj02(lon, lat), b = geo.wgs84ToBd09(lon, lat);
    var values = {gcj_lon: g[0].toFixed(6), gcj_lat: g[1].toFixed(6), bd_lon: b[0].toFixed(6),
      bd_lat: b[1].toFixed(6), name: q(name), address: q(address || name)};
    var tpl = appTemplates(templates), out = {};
    Object.keys(tpl).forEach(function (app) {
      out[app] = tpl[app].replace(/\{(\w+)\}/g, function (m, k) { return values[k]; });
    });
    return out;
  }

  function isApple() {
    var ua = navigator.userAgent || '';
    return /iPhone|iPad|iPod|Macintosh/.test(ua);
  }

  /** Copy text: the Clipboard API where allowed, else a selected textarea. A Promise. */
  function copy(text) {
    if (navigator.clipboard && root.isSecureContext) {
      // refused (no permission, page not focused): the old way may still work
      return navigator.clipboard.writeText(text).catch(function () { return copyBySelection(text); });
    }
    return copyBySelection(text);
  }

  function copyBySelection(text) {
    return new Promise(function (resolve, reject) {
      var area = document.createElement('textarea');
      area.value = text;
      area.setAttribute('readonly', '');
      area.style.position = 'fixed';
      area.style.opacity = '0';
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) resolve(); else reject(new Error('copy refused'));
    });
  }

  /** A share button: the Web Share API where the browser has it, else "copy link". */
  function wireShare(btn, t) {
    if (btn.getAttribute('data-vm-wired')) return;
    btn.setAttribute('data-vm-wired', '1');
    var url = btn.getAttribute('data-url'), title = btn.getAttribute('data-title') || '';
    var status = btn.parentNode.querySelector('.vm-share-status');
    var canShare = typeof navigator.share === 'function';
    var label = btn.querySelector('span') || btn;
    label.textContent = canShare ? t.ven_share : t.ven_copy_link;
    btn.hidden = false;
    btn.addEventListener('click', function () {
      if (canShare) {
        navigator.share({title: title, url: url}).catch(function () {});
        return;
      }
      copy(url).then(function () {
        if (status) status.textContent = t.ven_link_copied;
      }, function () {
        if (status) status.textContent = t.ven_copy_failed + ' ' + url;
      });
    });
  }

  /** The venue page: Apple Maps on Apple devices, share buttons working. */
  function enhance(scope, t) {
    if (isApple()) {
      Array.prototype.forEach.call(scope.querySelectorAll('[data-vm-apple]'), function (e) {
        e.hidden = false;
      });
    }
    Array.prototype.forEach.call(scope.querySelectorAll('.vm-share'), function (b) {
      wireShare(b, t);
    });
  }

  /** The popup's "go there" row, as on the venue page; `h` is map.js's element builder. */
  function block(h, p, lon, lat, t, lang, pageUrl, templates) {
    var name = p['name_' + lang] || p.name_zh;
    var l = links(name, lon, lat, p['address_' + lang] || p.address_zh || '', templates);
    function app(href, text) {
      return h('li', {}, [h('a', {class: 'vm-btn vm-go-app', href: href, target: '_blank',
        rel: 'noopener noreferrer', text: text})]);
    }
    var apple = app(l.apple, t.ven_apple);
    apple.hidden = !isApple();
    var share = h('button', {type: 'button', class: 'vm-btn vm-share', 'data-url': pageUrl,
      'data-title': name}, [h('span', {text: t.ven_share})]);
    var row = h('ul', {class: 'vm-go-links', 'aria-label': t.ven_go_there_label}, [
      app(l.amap, t.ven_amap), app(l.baidu, t.ven_baidu), apple,
      h('li', {class: 'vm-share-item'}, [share,
        h('span', {class: 'vm-share-status', role: 'status', 'aria-live': 'polite'})])
    ]);
    wireShare(share, t);
    return h('div', {class: 'vm-go'}, [row]);
  }

  var api = {links: links, block: block, enhance: enhance, wireShare: wireShare, copy: copy};
  if (typeof module === 'object' && module.exports) module.exports = api;
  else root.vmGo = api;
}(this));
